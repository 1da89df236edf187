// Test helper: the production API plus the test-only kurt.testing.v1 services, with routes.
#pragma once

#include <memory>

#include "edge/api_descriptors.h"
#include "edge/route_table.h"
#include "gtest/gtest.h"
#include "kurt/proto/descriptor_set.h"

namespace kurt::edge {

struct TestApi {
  std::unique_ptr<ApiDescriptors> api;
  std::unique_ptr<RouteTable> routes;

  static TestApi Load() {
    TestApi t;
    absl::StatusOr<std::unique_ptr<ApiDescriptors>> api = ApiDescriptors::CreateWithFiles(
        kurt::proto::DescriptorSet(), {KURT_TESTING_DESCRIPTOR_SET});
    EXPECT_TRUE(api.ok()) << api.status();
    if (!api.ok()) {
      return t;
    }
    t.api = *std::move(api);
    absl::StatusOr<std::unique_ptr<RouteTable>> routes = RouteTable::Build(*t.api, {});
    EXPECT_TRUE(routes.ok()) << routes.status();
    if (routes.ok()) {
      t.routes = *std::move(routes);
    }
    return t;
  }

  // The route serving `method path` (the test fails when there is none).
  const Route& Find(const char* method, const char* path, std::vector<std::string>* values) const {
    Router::Match m = routes->router().Find(method, path);
    EXPECT_EQ(m.outcome, Router::Outcome::kFound) << method << " " << path;
    if (values != nullptr) {
      *values = m.values;
    }
    return *routes->routes().at(m.route_id < 0 ? 0 : m.route_id);
  }
};

}  // namespace kurt::edge
