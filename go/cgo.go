package rocksmq

// The static library is built by `sh scripts/go-lib.sh` (cargo build
// --release -p rocksmq-capi), which copies it into lib/ beside this file;
// the header is the committed capi/include/rocksmq.h. RocksDB is C++, hence
// libstdc++.

/*
#cgo CFLAGS: -I${SRCDIR}/../capi/include
#cgo LDFLAGS: -L${SRCDIR}/lib -lrocksmq_capi -lstdc++ -lm -ldl -lpthread
#include <stdlib.h>
#include "rocksmq.h"
*/
import "C"
