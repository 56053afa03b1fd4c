package bolt

import (
	"bytes"
	"encoding/binary"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// bbolt cannot seek to the n-th key, so a deep startIndex used to walk the
// cursor over every key before it (100k users: ~700 pages/s). A pager
// remembers the key found at some positions, so a page starts from the
// nearest bookmark at or before its offset. Sequential paging (how IdPs
// import) then costs one seek per page.
//
// Positions move when records are added or removed, so every create and
// delete bumps a generation counter stored in the same transaction; a
// bookmark is only used by a read whose transaction sees the generation it
// was taken at. That makes the cache exact, not approximate.
type pager struct {
	mu    sync.Mutex
	sets  map[string]*bookmarks // by org + bucket
	every int                   // also bookmark every this many skipped keys
}

type bookmarks struct {
	gen   uint64
	marks map[int][]byte // position → key
}

const maxBookmarks = 4096

func newPager() *pager { return &pager{sets: map[string]*bookmarks{}, every: 512} }

func genKey(bucket []byte) []byte { return append([]byte("gen_"), bucket...) }

// bumpGeneration invalidates the bookmarks of bucket; call it in the
// transaction that adds or removes a record.
func bumpGeneration(tb *bolt.Bucket, bucket []byte) error {
	b := tb.Bucket(bCounters)
	var n uint64
	if v := b.Get(genKey(bucket)); v != nil {
		n = binary.BigEndian.Uint64(v)
	}
	return b.Put(genKey(bucket), u64(n+1))
}

func generation(tb *bolt.Bucket, bucket []byte) uint64 {
	if v := tb.Bucket(bCounters).Get(genKey(bucket)); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// nearest returns the bookmark at the largest position <= offset.
func (p *pager) nearest(set string, gen uint64, offset int) (int, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bm := p.sets[set]
	if bm == nil || bm.gen != gen {
		return 0, nil
	}
	best, key := 0, []byte(nil)
	for pos, k := range bm.marks {
		if pos <= offset && pos > best {
			best, key = pos, k
		}
	}
	return best, key
}

func (p *pager) remember(set string, gen uint64, marks map[int][]byte) {
	if len(marks) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	bm := p.sets[set]
	if bm == nil || bm.gen != gen {
		if bm != nil && bm.gen > gen {
			return // a newer generation is already cached
		}
		bm = &bookmarks{gen: gen, marks: map[int][]byte{}}
		p.sets[set] = bm
	}
	if len(bm.marks) > maxBookmarks {
		bm.marks = map[int][]byte{}
	}
	for pos, k := range marks {
		bm.marks[pos] = k
	}
}

// page skips offset keys of b and hands the next limit values to fn,
// starting from the nearest bookmark.
func (p *pager) page(tb *bolt.Bucket, org gateway.OrgID, name []byte, offset, limit int, fn func(v []byte) error) error {
	if limit <= 0 {
		return nil
	}
	set := string(org) + "\x00" + string(name)
	gen := generation(tb, name)
	c := tb.Bucket(name).Cursor()
	pos, start := p.nearest(set, gen, offset)
	var k, v []byte
	if start != nil {
		k, v = c.Seek(start)
		if !bytes.Equal(k, start) { // cannot happen within a generation; be safe
			pos, k, v = 0, nil, nil
		}
	}
	if k == nil {
		pos = 0
		k, v = c.First()
	}
	learned := map[int][]byte{}
	for ; pos < offset && k != nil; pos++ {
		if pos > 0 && pos%p.every == 0 {
			learned[pos] = bytes.Clone(k)
		}
		k, v = c.Next()
	}
	if k != nil && pos == offset {
		learned[pos] = bytes.Clone(k)
	}
	for n := 0; k != nil && n < limit; n++ {
		if err := fn(v); err != nil {
			return err
		}
		k, v = c.Next()
		pos++
	}
	if k != nil {
		learned[pos] = bytes.Clone(k) // where the next page starts
	}
	p.remember(set, gen, learned)
	return nil
}
