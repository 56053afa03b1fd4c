package gateway

import (
	"encoding/json"
	"testing"
)

func TestDocument(t *testing.T) {
	d := NewDocument(map[string]any{"userName": "a", "n": 1})
	b, err := json.Marshal(struct{ D Document }{d})
	if err != nil || string(b) != `{"D":{"n":1,"userName":"a"}}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back struct{ D Document }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	m, err := back.D.Map()
	if err != nil || m["userName"] != "a" || m["n"].(json.Number).String() != "1" {
		t.Fatalf("round trip map: %v %v", m, err)
	}
	// Map returns a map the caller owns.
	m["userName"] = "changed"
	if again, _ := back.D.Map(); again["userName"] != "a" {
		t.Fatal("Map shares state with the document")
	}
	if raw, _ := back.D.JSON(); string(raw) != `{"n":1,"userName":"a"}` {
		t.Fatalf("JSON keeps the stored bytes: %s", raw)
	}
	var bad Document
	if err := json.Unmarshal([]byte(`[1]`), &bad); err == nil {
		t.Fatal("an array is not a document")
	}
	var null struct{ D Document }
	if err := json.Unmarshal([]byte(`{"D":null}`), &null); err != nil {
		t.Fatal(err)
	}
	if raw, _ := null.D.JSON(); string(raw) != "{}" {
		t.Fatalf("empty document encodes as %s", raw)
	}
}
