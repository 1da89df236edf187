// The API the edge serves, as protobuf descriptors: the set built into the binary plus any extra
// sets given at start (tests add their own services that way). Also the type resolver the JSON
// transcoder uses, with every type resolved once at start instead of on each request.
//
// Created once in main, immutable afterwards; read by every thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/type_resolver.h"

namespace kurt::edge {

inline constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com";

std::string TypeUrl(const google::protobuf::Descriptor* descriptor);

class ApiDescriptors {
 public:
  // Each element is a serialized google.protobuf.FileDescriptorSet whose files come after their
  // dependencies. A file already loaded (same name) from an earlier set is skipped.
  static absl::StatusOr<std::unique_ptr<ApiDescriptors>> Create(
      const std::vector<std::string>& descriptor_sets);
  // Reads each file as a serialized FileDescriptorSet and calls Create with the built-in set first.
  static absl::StatusOr<std::unique_ptr<ApiDescriptors>> CreateWithFiles(
      std::string_view built_in, const std::vector<std::string>& paths);
  ~ApiDescriptors();

  const google::protobuf::DescriptorPool& pool() const { return *pool_; }
  // Every file, in load order.
  const std::vector<const google::protobuf::FileDescriptor*>& files() const { return files_; }
  // Thread-safe; resolves this pool's types and, failing that, those compiled into the binary
  // (e.g. google.rpc error details inside an Any).
  google::protobuf::util::TypeResolver* resolver() const { return resolver_.get(); }
  // The empty DynamicMessage of a type of this pool (made at start), or null.
  const google::protobuf::Message* Prototype(const google::protobuf::Descriptor* type) const {
    auto it = prototypes_.find(type);
    return it == prototypes_.end() ? nullptr : it->second;
  }

 private:
  ApiDescriptors() = default;

  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::vector<const google::protobuf::FileDescriptor*> files_;
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  absl::flat_hash_map<const google::protobuf::Descriptor*, const google::protobuf::Message*>
      prototypes_;
};

}  // namespace kurt::edge
