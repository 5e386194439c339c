# Two commands work on a fresh machine: `make demo` and `make test` (see README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama.cpp is built from source by pip. A native build enables AMX kernels that crash
# (SIGSEGV in ggml_backend_amx_mul_mat) on the virtual CPUs here, so build a portable AVX2 library.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[llamacpp,dev,retrieval]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/agentkit run mccot --samples 5 --seed 7 \
		--question "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

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
