package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LastForSubject returns the last message stored on subject in stream, read
// through the stream leader ($JS.API.STREAM.MSG.GET.<stream> with
// last_by_subj), never through a direct get. On a replicated stream with
// allow_direct, as every KV bucket has, a direct get may be answered by a
// follower that has not yet applied the newest write; a read-modify-write
// that decides something from the value it read (not only from the failure
// of a compare-and-set) must read here instead. It returns
// jetstream.ErrMsgNotFound when the subject holds no message (a KV delete or
// purge marker is returned as stored, with its KV-Operation header), and a
// *jetstream.APIError for other server errors.
func LastForSubject(ctx context.Context, js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	m, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("read last of %s in %s: %w", subject, stream, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("read last of %s in %s: %w", subject, stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, fmt.Errorf("read last of %s in %s: empty answer", subject, stream)
	}
	msg := resp.Message
	out := &jetstream.RawStreamMsg{Subject: msg.Subject, Sequence: msg.Seq, Data: msg.Data, Time: msg.Time}
	if len(msg.Header) > 0 {
		if out.Header, err = nats.DecodeHeadersMsg(msg.Header); err != nil {
			return nil, fmt.Errorf("read last of %s in %s: headers: %w", subject, stream, err)
		}
	}
	return out, nil
}
