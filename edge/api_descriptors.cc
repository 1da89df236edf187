#include "edge/api_descriptors.h"

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace kurt::edge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FileDescriptor;
namespace util = google::protobuf::util;

// Answers from a table filled at start; what is not in it goes to the fallbacks (the pool's own
// resolver, then the binary's generated pool). TypeResolver is only ever read, so the table
// needs no lock.
class CachingTypeResolver : public util::TypeResolver {
 public:
  CachingTypeResolver(const DescriptorPool* pool, const std::vector<const FileDescriptor*>& files)
      : pool_resolver_(util::NewTypeResolverForDescriptorPool(std::string(kTypeUrlPrefix), pool)),
        generated_resolver_(util::NewTypeResolverForDescriptorPool(
            std::string(kTypeUrlPrefix), DescriptorPool::generated_pool())) {
    for (const FileDescriptor* file : files) {
      for (int i = 0; i < file->message_type_count(); ++i) {
        AddMessage(file->message_type(i));
      }
      for (int i = 0; i < file->enum_type_count(); ++i) {
        AddEnum(file->enum_type(i));
      }
    }
  }

  util::Status ResolveMessageType(const std::string& type_url,
                                  google::protobuf::Type* type) override {
    if (auto it = messages_.find(type_url); it != messages_.end()) {
      *type = *it->second;
      return util::Status();
    }
    util::Status s = pool_resolver_->ResolveMessageType(type_url, type);
    if (s.ok()) {
      return s;
    }
    return generated_resolver_->ResolveMessageType(type_url, type);
  }

  util::Status ResolveEnumType(const std::string& type_url,
                               google::protobuf::Enum* enum_type) override {
    if (auto it = enums_.find(type_url); it != enums_.end()) {
      *enum_type = *it->second;
      return util::Status();
    }
    util::Status s = pool_resolver_->ResolveEnumType(type_url, enum_type);
    if (s.ok()) {
      return s;
    }
    return generated_resolver_->ResolveEnumType(type_url, enum_type);
  }

 private:
  void AddMessage(const Descriptor* d) {
    std::string url = TypeUrl(d);
    auto type = std::make_unique<google::protobuf::Type>();
    if (pool_resolver_->ResolveMessageType(url, type.get()).ok()) {
      messages_.emplace(std::move(url), std::move(type));
    }
    for (int i = 0; i < d->nested_type_count(); ++i) {
      AddMessage(d->nested_type(i));
    }
    for (int i = 0; i < d->enum_type_count(); ++i) {
      AddEnum(d->enum_type(i));
    }
  }
  void AddEnum(const EnumDescriptor* e) {
    std::string url = absl::StrCat(kTypeUrlPrefix, "/", e->full_name());
    auto type = std::make_unique<google::protobuf::Enum>();
    if (pool_resolver_->ResolveEnumType(url, type.get()).ok()) {
      enums_.emplace(std::move(url), std::move(type));
    }
  }

  std::unique_ptr<util::TypeResolver> pool_resolver_;
  std::unique_ptr<util::TypeResolver> generated_resolver_;
  absl::flat_hash_map<std::string, std::unique_ptr<google::protobuf::Type>> messages_;
  absl::flat_hash_map<std::string, std::unique_ptr<google::protobuf::Enum>> enums_;
};

}  // namespace

std::string TypeUrl(const Descriptor* descriptor) {
  return absl::StrCat(kTypeUrlPrefix, "/", descriptor->full_name());
}

ApiDescriptors::~ApiDescriptors() = default;

absl::StatusOr<std::unique_ptr<ApiDescriptors>> ApiDescriptors::Create(
    const std::vector<std::string>& descriptor_sets) {
  std::unique_ptr<ApiDescriptors> api(new ApiDescriptors());
  api->pool_ = std::make_unique<DescriptorPool>();
  for (size_t n = 0; n < descriptor_sets.size(); ++n) {
    google::protobuf::FileDescriptorSet set;
    if (!set.ParseFromString(descriptor_sets[n])) {
      return absl::InvalidArgumentError(
          absl::StrCat("descriptor set #", n, " is not a serialized FileDescriptorSet"));
    }
    for (const google::protobuf::FileDescriptorProto& proto : set.file()) {
      if (api->pool_->FindFileByName(proto.name()) != nullptr) {
        continue;
      }
      const FileDescriptor* file = api->pool_->BuildFile(proto);
      if (file == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("descriptor set #", n, ": cannot build ", proto.name(),
                         " (a dependency missing or listed after it?)"));
      }
      api->files_.push_back(file);
    }
  }
  api->resolver_ = std::make_unique<CachingTypeResolver>(api->pool_.get(), api->files_);
  api->factory_ = std::make_unique<google::protobuf::DynamicMessageFactory>(api->pool_.get());
  std::vector<const Descriptor*> todo;
  for (const FileDescriptor* file : api->files_) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      todo.push_back(file->message_type(i));
    }
  }
  while (!todo.empty()) {
    const Descriptor* d = todo.back();
    todo.pop_back();
    api->prototypes_[d] = api->factory_->GetPrototype(d);
    for (int i = 0; i < d->nested_type_count(); ++i) {
      todo.push_back(d->nested_type(i));
    }
  }
  return api;
}

absl::StatusOr<std::unique_ptr<ApiDescriptors>> ApiDescriptors::CreateWithFiles(
    std::string_view built_in, const std::vector<std::string>& paths) {
  std::vector<std::string> sets;
  sets.emplace_back(built_in);
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(absl::StrCat("cannot read descriptor set ", path));
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    sets.push_back(buffer.str());
  }
  return Create(sets);
}

}  // namespace kurt::edge
