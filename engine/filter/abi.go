package filter

// ABI names and codes of the http-wasm handler ABI and the hookwall module.
//
// They are defined here rather than imported from http-wasm-host-go so the
// gateway binary does not depend on another host implementation for twenty
// stable constants; TestABIConstantsMatchReference checks them against the
// reference module, which stays a test-only dependency.
const (
	moduleHTTPHandler = "http_handler"
	moduleHookwall    = "hookwall"
	moduleWASI        = "wasi_snapshot_preview1"

	exportHandleRequest  = "handle_request"
	exportHandleResponse = "handle_response"
	exportMemory         = "memory"

	fnEnableFeatures     = "enable_features"
	fnGetConfig          = "get_config"
	fnLogEnabled         = "log_enabled"
	fnLog                = "log"
	fnGetMethod          = "get_method"
	fnSetMethod          = "set_method"
	fnGetURI             = "get_uri"
	fnSetURI             = "set_uri"
	fnGetProtocolVersion = "get_protocol_version"
	fnGetHeaderNames     = "get_header_names"
	fnGetHeaderValues    = "get_header_values"
	fnSetHeaderValue     = "set_header_value"
	fnAddHeaderValue     = "add_header_value"
	fnRemoveHeader       = "remove_header"
	fnReadBody           = "read_body"
	fnWriteBody          = "write_body"
	fnGetStatusCode      = "get_status_code"
	fnSetStatusCode      = "set_status_code"
	fnGetSourceAddr      = "get_source_addr"

	fnSetLabel = "set_label"
	fnGetRoute = "get_route"
)

// Feature bits of enable_features.
const (
	featureBufferRequest  uint32 = 1 << 0
	featureBufferResponse uint32 = 1 << 1
	featureTrailers       uint32 = 1 << 2

	// supportedFeatures is what this host can grant: fasthttp holds whole
	// bodies, and has no trailer support worth exposing.
	supportedFeatures = featureBufferRequest | featureBufferResponse
)

// Header kinds.
const (
	headerKindRequest          uint32 = 0
	headerKindResponse         uint32 = 1
	headerKindRequestTrailers  uint32 = 2
	headerKindResponseTrailers uint32 = 3
)

// Body kinds.
const (
	bodyKindRequest  uint32 = 0
	bodyKindResponse uint32 = 1
)

// Log levels of log and log_enabled.
const (
	logLevelDebug int32 = -1
	logLevelInfo  int32 = 0
	logLevelWarn  int32 = 1
	logLevelError int32 = 2
	logLevelNone  int32 = 3
)

// Limits the host enforces on what a guest hands over.
const (
	// outputLimit bounds each of an instance's stdout and stderr buffers.
	outputLimit = 4 << 10
	// logMessageLimit bounds one guest log message; the rest is cut.
	logMessageLimit = 4 << 10
	// logCallLimit bounds the guest output logged per guest call (log
	// messages, stdout and stderr together), and logSecondLimit the output
	// logged per filter per second, across its instances: a guest that logs
	// in a loop costs the log at most this much. The rest is dropped and
	// counted (Stats.LogDropped).
	logCallLimit   = 16 << 10
	logSecondLimit = 256 << 10
	// labelKeyLimit and labelValueLimit bound one set_label call, and
	// labelCountLimit the calls per request, so a guest cannot flood the
	// policy input or the decision log.
	labelKeyLimit   = 128
	labelValueLimit = 1024
	labelCountLimit = 64
)
