// The OpenAPI 3.0 document of the HTTP API, generated from the same descriptors and routes the
// edge serves (so it cannot drift): paths, parameters, request bodies, response schemas, and the
// proto comments as descriptions. Built once at start.
#pragma once

#include <string>

#include "edge/api_descriptors.h"
#include "edge/route_table.h"

namespace kurt::edge {

std::string BuildOpenApi(const ApiDescriptors& api, const RouteTable& routes,
                         const std::string& server_url);

}  // namespace kurt::edge
