//go:build test

package walimpls

import (
	"testing"

	"github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
	"github.com/milvus-io/milvus/pkg/v2/util/paramtable"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// TestMilvusWALImplsFramework runs Milvus's own conformance framework
// (walimpls.NewWALImplsTestFramework, build tag test) on rocksmq.
func TestMilvusWALImplsFramework(t *testing.T) {
	paramtable.Init()
	RegisterMessageID()
	store, err := rocksmq.OpenPath(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	walimpls.NewWALImplsTestFramework(t, 1000, &Builder{Store: store}).Run()
}
