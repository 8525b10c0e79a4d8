module github.com/hookwall/hookwall/sdk

go 1.24
