// The reference proxy: grpc-gateway's generated handlers for kurt.links.v1, nothing else.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"strings"

	linksv1 "github.com/kurt/kurt/gen/go/kurt/links/v1"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18182", "HTTP address")
	upstream := flag.String("upstream", "127.0.0.1:7101", "kurt-links gRPC address")
	flag.Parse()
	// The same metadata the edge passes (its allow-list, and the dev account header the edge
	// trusts with --dev_trust_account_header), so that kurt-links does the same work for both.
	mux := runtime.NewServeMux(runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
		switch k := strings.ToLower(key); k {
		case "authorization", "x-request-id", "traceparent", "x-kurt-account-id":
			return k, true
		case "user-agent":
			return "x-kurt-user-agent", true
		case "referer":
			return "x-kurt-referer", true
		}
		return "", false
	}))
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if err := linksv1.RegisterLinksServiceHandlerFromEndpoint(context.Background(), mux, *upstream, opts); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(*listen, mux))
}
