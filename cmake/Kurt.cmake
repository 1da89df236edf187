# Helpers that keep each folder's CMakeLists.txt to a few lines.

# kurt_test(NAME name SRCS a_test.cc ... DEPS lib ... LABEL unit|integration|fault)
# One GoogleTest binary, its tests discovered by ctest and labelled. Integration and fault tests
# run one at a time (RUN_SERIAL) because they share the local stack.
function(kurt_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SRCS;DEPS" ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gmock GTest::gtest_main)
  set(props LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
  if(NOT T_LABEL STREQUAL "unit")
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${T_NAME} PROPERTIES ${props} DISCOVERY_TIMEOUT 60)
endfunction()

# kurt_use_jemalloc(target): the program allocates with jemalloc instead of glibc's malloc.
# Kurt's programs hand memory from thread to thread all the time (librdkafka's fetch and delivery
# threads, gRPC's completion threads, the analytics consumer's pipelined batches), which glibc's
# per-thread arenas serve poorly: in tools/bench clicks, jemalloc took about a quarter off the CPU
# time of kurt-analytics and a third off the producer's. Nothing calls it by name: it must be
# linked as it is (not dropped by --as-needed) to be the process's malloc, which a test checks.
function(kurt_use_jemalloc target)
  target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
  add_test(NAME ${target}.allocates_with_jemalloc
    COMMAND sh -c "ldd \"$1\" | grep -q libjemalloc" sh $<TARGET_FILE:${target}>)
  set_tests_properties(${target}.allocates_with_jemalloc PROPERTIES LABELS unit)
endfunction()

# kurt_binary(NAME kurt-links SRCS main.cc DEPS links_lib ...)
function(kurt_binary)
  cmake_parse_arguments(B "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${B_NAME} ${B_SRCS})
  target_link_libraries(${B_NAME} PRIVATE ${B_DEPS})
  kurt_use_jemalloc(${B_NAME})
  install(TARGETS ${B_NAME} RUNTIME DESTINATION bin)
endfunction()
