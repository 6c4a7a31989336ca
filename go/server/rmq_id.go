package server

import "encoding/binary"

// RmqID is Milvus's message id of the msgstream layer: the id, serialized
// as 8 little-endian bytes, so that checkpoints written by Milvus's own
// RocksMQ stay readable.
type RmqID struct {
	MessageID UniqueID
}

// Serialize is the id's 8 little-endian bytes.
func (rid *RmqID) Serialize() []byte { return SerializeRmqID(rid.MessageID) }

// AtEarliestPosition says whether the id is at or before the first message.
func (rid *RmqID) AtEarliestPosition() bool { return rid.MessageID <= 0 }

// LessOrEqualThan compares with a serialized id.
func (rid *RmqID) LessOrEqualThan(msgID []byte) (bool, error) {
	return rid.MessageID <= DeserializeRmqID(msgID), nil
}

// Equal compares with a serialized id.
func (rid *RmqID) Equal(msgID []byte) (bool, error) {
	return rid.MessageID == DeserializeRmqID(msgID), nil
}

// SerializeRmqID is messageID as 8 little-endian bytes.
func SerializeRmqID(messageID int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(messageID))
	return b
}

// DeserializeRmqID reads 8 little-endian bytes; shorter input reads as if
// padded with zeros (Milvus's panics).
func DeserializeRmqID(messageID []byte) int64 {
	var b [8]byte
	copy(b[:], messageID)
	return int64(binary.LittleEndian.Uint64(b[:]))
}
