# Included by CMake when llama.cpp's project() starts (the Makefile passes it to pip's llama-cpp-python
# build as CMAKE_PROJECT_llama.cpp_INCLUDE). llama-cpp-python forces LLAMA_BUILD_COMMON on, but it
# only loads libllama and libggml*: the common library (argument parsing, chat templates, HTTP) is
# used by llama.cpp's own programs. Setting it here, before llama.cpp declares the option, keeps it off.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama.cpp: common utils library (not used by the Python bindings)" FORCE)
