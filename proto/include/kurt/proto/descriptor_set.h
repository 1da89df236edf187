// The serialized google.protobuf.FileDescriptorSet of every Kurt proto and its imports, built
// into the binary so the edge (and tools) can read the API's annotations at run time.
#pragma once

#include <string_view>

namespace kurt::proto {

// Bytes of a FileDescriptorSet, sorted so that each file follows its dependencies.
std::string_view DescriptorSet();

}  // namespace kurt::proto
