// libFuzzer target (KURT_FUZZ=ON, clang): feeds the router and the request/response transcoder
// with arbitrary input. Input: "METHOD TARGET\n" then the body; the body also goes through the
// response side as a serialized message and as JSON of the route's request type.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "edge/api_descriptors.h"
#include "edge/route_table.h"
#include "edge/transcoder.h"
#include "kurt/proto/descriptor_set.h"

namespace {

struct World {
  std::unique_ptr<kurt::edge::ApiDescriptors> api;
  std::unique_ptr<kurt::edge::RouteTable> routes;
  std::unique_ptr<kurt::edge::Transcoder> transcoder;
};

World* Load() {
  auto* w = new World();
  auto api = kurt::edge::ApiDescriptors::CreateWithFiles(kurt::proto::DescriptorSet(),
                                                         {KURT_TESTING_DESCRIPTOR_SET});
  if (!api.ok()) abort();
  w->api = *std::move(api);
  auto routes = kurt::edge::RouteTable::Build(*w->api, {});
  if (!routes.ok()) abort();
  w->routes = *std::move(routes);
  w->transcoder = std::make_unique<kurt::edge::Transcoder>(w->api.get());
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = Load();
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t space = input.find(' ');
  size_t newline = input.find('\n');
  if (space == std::string::npos || newline == std::string::npos || newline < space) return 0;
  std::string method = input.substr(0, space);
  std::string target = input.substr(space + 1, newline - space - 1);
  std::string body = input.substr(newline + 1);
  std::string path = target.substr(0, target.find('?'));
  std::string query = path.size() < target.size() ? target.substr(path.size() + 1) : "";

  kurt::edge::Router::Match m = world->routes->router().Find(method, path);
  world->routes->router().AllowedMethods(path);
  if (m.outcome != kurt::edge::Router::Outcome::kFound) return 0;
  const kurt::edge::Route& route = *world->routes->routes()[m.route_id];
  absl::StatusOr<std::string> request =
      world->transcoder->Request(route, m.values, query, body, "application/json");
  if (request.ok()) {
    // What the edge sends must be a message the response side can render again.
    world->transcoder->ToJson(route.request_type_url, *request).IgnoreError();
  }
  // Arbitrary bytes as an upstream response.
  world->transcoder->Response(route, body).IgnoreError();
  world->transcoder->EventId(route, body);
  kurt::edge::Transcoder::Location(route, body);
  world->transcoder->ErrorBody(3, body, body);
  return 0;
}
