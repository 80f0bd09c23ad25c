package xapi

import (
	"context"
	"time"
)

// Event is one entry of an event.from batch (xapi.md §4.1).
type Event struct {
	// ID is the database generation as a string ("0" for messages).
	ID string `xapi:"id"`
	// Class is the lowercase class name ("vm", "host", "task", …).
	Class string `xapi:"class"`
	// Operation is "add", "mod" or "del".
	Operation string `xapi:"operation"`
	// Ref is the object's reference.
	Ref Ref `xapi:"ref"`
	// Snapshot is the object's record after the change, decoded like
	// Client.GetAllRecords values; nil for "del".
	Snapshot map[string]any `xapi:"snapshot"`
}

// EventBatch is the result of event.from.
type EventBatch struct {
	// Events are the coalesced changes since the token, in no meaningful order.
	Events []Event `xapi:"events"`
	// ValidRefCounts is the number of objects per lowercase class, for
	// every class regardless of the subscription.
	ValidRefCounts map[string]int64 `xapi:"valid_ref_counts"`
	// Token is what the next event.from call must send.
	Token string `xapi:"token"`
}

// EventFrom calls event.from(classes, token, timeout) once. Classes are
// "*", "<class>" or "<class>/<ref>"; token "" returns an "add" event for
// every existing object of the subscribed classes. The call blocks until
// a change or the timeout; it runs on the Client's long-poll connections,
// so it never holds up ordinary calls, and its HTTP exchange may last
// timeout plus 15 s (unless ctx ends sooner).
//
// Errors worth handling: ErrEventsLost and ErrEventFromTokenParseFailure
// (start again with token ""), ErrMessageMethodUnknown (XAPI older than
// 6.0).
func (c *Client) EventFrom(ctx context.Context, classes []string, token string, timeout time.Duration) (*EventBatch, error) {
	var out EventBatch
	if err := c.eventFromInto(ctx, &out, classes, token, timeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// eventFromInto calls event.from on the long-poll connections and decodes
// the batch into out.
func (c *Client) eventFromInto(ctx context.Context, out any, classes []string, token string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout+15*time.Second)
	defer cancel()
	if classes == nil {
		classes = []string{}
	}
	_, err := c.call(ctx, c.long, out, "event.from", []any{classes, token, timeout.Seconds()})
	return err
}
