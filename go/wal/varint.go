package wal

import "encoding/binary"

func putVarint(b []byte, v int64) int { return binary.PutVarint(b, v) }

func varint(b []byte) (int64, int) { return binary.Varint(b) }
