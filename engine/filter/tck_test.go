package filter

import (
	"net/http"
	"strings"
	"testing"

	handlerapi "github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/http-wasm/http-wasm-host-go/tck"
)

// tckCases is the number of test IDs tck.Run of http-wasm-host-go v0.7.0
// sends; each must reach the gateway and pass.
const tckCases = 35

// TestTCK runs the http-wasm compatibility kit against a real fasthttp
// gateway on 127.0.0.1 that runs the TCK guest through this host and
// proxies to the TCK backend.
func TestTCK(t *testing.T) {
	backend := tck.StartBackend("127.0.0.1:0")
	t.Cleanup(backend.Close)

	h := newHost(t)
	f := load(t, h, Spec{Name: "tck", Module: tck.GuestWASM, Pool: 2})
	g := startGateway(t, f, strings.TrimPrefix(backend.URL, "http://"))
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)

	// tck.Run makes its test parallel; the group returns once it finished.
	t.Run("group", func(t *testing.T) {
		t.Run("kit", func(t *testing.T) {
			tck.Run(t, client, g.url)
		})
	})
	t.Run("count", func(t *testing.T) {
		g.mu.Lock()
		n := len(g.seen)
		g.mu.Unlock()
		if n != tckCases {
			t.Errorf("TCK sent %d distinct test IDs, want %d", n, tckCases)
		}
		for _, err := range g.errors() {
			t.Errorf("filter error during TCK: %v", err)
		}
		t.Logf("TCK: %d test IDs through the fasthttp gateway", n)
	})
}

// TestABIConstantsMatchReference keeps our ABI constants equal to the
// reference host's, which are not imported by non-test code.
func TestABIConstantsMatchReference(t *testing.T) {
	names := map[string]string{
		fnEnableFeatures:     handlerapi.FuncEnableFeatures,
		fnGetConfig:          handlerapi.FuncGetConfig,
		fnLogEnabled:         handlerapi.FuncLogEnabled,
		fnLog:                handlerapi.FuncLog,
		fnGetMethod:          handlerapi.FuncGetMethod,
		fnSetMethod:          handlerapi.FuncSetMethod,
		fnGetURI:             handlerapi.FuncGetURI,
		fnSetURI:             handlerapi.FuncSetURI,
		fnGetProtocolVersion: handlerapi.FuncGetProtocolVersion,
		fnGetHeaderNames:     handlerapi.FuncGetHeaderNames,
		fnGetHeaderValues:    handlerapi.FuncGetHeaderValues,
		fnSetHeaderValue:     handlerapi.FuncSetHeaderValue,
		fnAddHeaderValue:     handlerapi.FuncAddHeaderValue,
		fnRemoveHeader:       handlerapi.FuncRemoveHeader,
		fnReadBody:           handlerapi.FuncReadBody,
		fnWriteBody:          handlerapi.FuncWriteBody,
		fnGetStatusCode:      handlerapi.FuncGetStatusCode,
		fnSetStatusCode:      handlerapi.FuncSetStatusCode,
		fnGetSourceAddr:      handlerapi.FuncGetSourceAddr,
		exportHandleRequest:  handlerapi.FuncHandleRequest,
		exportHandleResponse: handlerapi.FuncHandleResponse,
		moduleHTTPHandler:    handlerapi.HostModule,
	}
	for ours, theirs := range names {
		if ours != theirs {
			t.Errorf("name %q, reference %q", ours, theirs)
		}
	}
	nums := []struct {
		name         string
		ours, theirs uint32
	}{
		{"buffer_request", featureBufferRequest, uint32(handlerapi.FeatureBufferRequest)},
		{"buffer_response", featureBufferResponse, uint32(handlerapi.FeatureBufferResponse)},
		{"trailers", featureTrailers, uint32(handlerapi.FeatureTrailers)},
		{"header request", headerKindRequest, uint32(handlerapi.HeaderKindRequest)},
		{"header response", headerKindResponse, uint32(handlerapi.HeaderKindResponse)},
		{"header request trailers", headerKindRequestTrailers, uint32(handlerapi.HeaderKindRequestTrailers)},
		{"header response trailers", headerKindResponseTrailers, uint32(handlerapi.HeaderKindResponseTrailers)},
		{"body request", bodyKindRequest, uint32(handlerapi.BodyKindRequest)},
		{"body response", bodyKindResponse, uint32(handlerapi.BodyKindResponse)},
	}
	for _, n := range nums {
		if n.ours != n.theirs {
			t.Errorf("%s = %d, reference %d", n.name, n.ours, n.theirs)
		}
	}
}
