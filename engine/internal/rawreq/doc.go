// Package rawreq reads an HTTP/1.1 request from a file, as a capture or `curl --trace`
// records it, for `hookwall eval`.
//
// Parse accepts two forms:
//
//   - A raw request: request line, header lines, a blank line, the body. Lines of the head may
//     end in CRLF or, as hand-edited files do, LF. The body is taken verbatim (signatures cover
//     its exact bytes): Content-Length bytes when the header is present (a trailing newline an
//     editor added after them is ignored, anything else is an error), the chunked body when
//     Transfer-Encoding is chunked, else the rest of the file (a rest made only of CR and LF is
//     no body). Trailer fields after a chunked body are an error: the gateway refuses them.
//   - The output of `curl --trace FILE` (hex dump): the first request's "Send header" section
//     and the "Send data" sections after it. `--trace-ascii` output is refused: it replaces
//     bytes and drops line ends, so it cannot reproduce what was signed.
//
// Wire returns canonical HTTP/1.1 bytes (CRLF line ends, the body framed by Content-Length or,
// when it arrived chunked, by one chunk); Into feeds them to fasthttp's parser, the one the
// gateway's listener uses, with its body limit, so an evaluated request is parsed exactly as a
// live one. Obsolete line folding, bare
// CRs, header names with spaces and a request line without an HTTP version are errors, each
// naming its line. Sizes are bounded (MaxSize, MaxHeaders). Parse never panics on any input
// (FuzzParse).
package rawreq
