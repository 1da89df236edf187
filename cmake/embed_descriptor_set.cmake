# Turns the descriptor set into a C++ source file (run by proto/CMakeLists.txt at build time).
file(READ ${INPUT} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT}
"// Generated from the descriptor set by cmake/embed_descriptor_set.cmake; do not edit.\n"
"#include \"kurt/proto/descriptor_set.h\"\n\n"
"namespace kurt::proto {\nnamespace {\nconstexpr unsigned char kBytes[] = {\n${bytes}\n};\n}  // namespace\n\n"
"std::string_view DescriptorSet() {\n"
"  return {reinterpret_cast<const char*>(kBytes), sizeof(kBytes)};\n}\n\n}  // namespace kurt::proto\n")
