# xorest — see README.md. `make run` and `make test` are the two commands
# a newcomer needs; everything else is for development.

GO       ?= go
BIN      := bin
PEERS    := $(CURDIR)/.peers
GOFLAGS  ?=
TESTFLAGS ?= -count=1 -timeout 30m

# Tests find their peers here (see scripts/install-peers.sh).
export XOREST_NODE_MODULES := $(PEERS)/node_modules
export XOREST_PYTHON       ?= /usr/bin/python3

.PHONY: all build run test peers vet lint bench fuzz clean

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

# Starts xorest on the embedded simulated pool and prints the URL and a token.
run: build
	$(BIN)/xorest serve

# Installs the test peers (apt, npm), then vets and runs every test.
test: peers vet
	$(GO) test $(TESTFLAGS) ./...

peers:
	scripts/install-peers.sh

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint: vet
	$(GO) run $(STATICCHECK) ./...

# Benchmarks side by side with their peers; prints ratios.
bench: peers build
	scripts/bench.sh

# Runs every fuzz target for FUZZTIME each.
FUZZTIME ?= 20s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BIN)

# The Lambda bundle that template.yaml deploys: xorest for provided.al2023
# on arm64, as dist/bootstrap zipped into dist/xorest-lambda.zip.
.PHONY: lambda
lambda:
	mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o dist/bootstrap ./cmd/xorest
	rm -f dist/xorest-lambda.zip
	if command -v zip >/dev/null; then cd dist && zip -q -X xorest-lambda.zip bootstrap; \
	else python3 -c 'import zipfile as z; f=z.ZipFile("dist/xorest-lambda.zip","w",z.ZIP_DEFLATED); i=z.ZipInfo("bootstrap",(1980,1,1,0,0,0)); i.external_attr=0o100755<<16; i.compress_type=z.ZIP_DEFLATED; f.writestr(i,open("dist/bootstrap","rb").read()); f.close()'; fi
