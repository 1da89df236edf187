// The grpc-gateway reference proxy of tools/bench edge (tools/bench.d/edge.sh generates the
// github.com/kurt/kurt/gen/go packages from proto/ next to this file before it builds). Committed
// with go.sum and built with -mod=readonly: nothing is resolved at run time.
module github.com/kurt/kurt

go 1.26.0

// grpc-gateway v2.33.0 and grpc v1.84.0 ask for genproto versions the module proxy refuses (403);
// this one is served and has what they use.
replace google.golang.org/genproto/googleapis/rpc => google.golang.org/genproto/googleapis/rpc v0.0.0-20261110000943-09e21b237f2c

replace google.golang.org/genproto/googleapis/api => google.golang.org/genproto/googleapis/api v0.0.0-20261110000943-09e21b237f2c

require (
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0
	google.golang.org/genproto/googleapis/api v0.0.0-20261026165753-2ffab32bce7e
	google.golang.org/grpc v1.84.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261104224025-d1e00e9f33ab // indirect
)
