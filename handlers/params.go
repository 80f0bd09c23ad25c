package handlers

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/xorest/xorest/xo/filter"
)

// Wait is the mode of the wait query parameter.
type Wait int

// Wait modes.
const (
	WaitNone   Wait = iota // no wait parameter: answer at once
	WaitResult             // wait=result or wait=true: answer when the task ends
	WaitChange             // any other value: answer at the object's next change
)

// Query holds the common query parameters of a request, parsed by
// ParseQuery. Parameters a route does not accept keep their zero values.
type Query struct {
	// Fields is nil without a fields parameter (answer URLs), else the
	// fields to pick (see ParseFields).
	Fields *Fields
	// Filter is the parsed filter, nil without one (an empty filter is none).
	Filter filter.Node
	// FilterText is the filter as given.
	FilterText string
	// Limit is the maximum number of objects, -1 for no limit. XO
	// semantics: limit must be a decimal number (else 422); 0 answers
	// nothing; negative and fractional values never count down to 0, so
	// they mean no limit. The limit applies after filtering.
	Limit int
	// Flags: a bare key or =true (any case) means on, =false off, anything
	// else is a 422.
	NDJSON, Markdown, Watch, Sync, Raw, PreferNBD bool
	// Wait is the wait mode: wait=result or wait=true wait for completion,
	// wait=false does not wait, any other value (a bare ?wait included)
	// waits for the next change.
	Wait Wait
	// Granularity is the stats granularity (seconds, minutes, hours or
	// days); "" means seconds.
	Granularity string
}

// paramSpec declares one query parameter: how it is parsed and documented.
type paramSpec struct {
	description string
	schema      map[string]any // OpenAPI schema
	parse       func(q *Query, value string) error
}

var (
	flagSchema   = map[string]any{"type": "string", "enum": []any{"", "true", "false"}}
	stringSchema = map[string]any{"type": "string"}
)

// paramSpecs are the query parameters routes may accept (route.params).
var paramSpecs = map[string]paramSpec{
	"fields": {
		description: "Comma-separated fields to return (lodash paths like CPUs.number or tags[0]), or * for whole objects. Without it, the answer is a list of URLs.",
		schema:      stringSchema,
		parse: func(q *Query, v string) error {
			q.Fields = ParseFields(v)
			return nil
		},
	},
	"filter": {
		description: "Only objects matching this complex-matcher filter, e.g. power_state:Running name_label:/^web/i",
		schema:      stringSchema,
		parse: func(q *Query, v string) error {
			q.FilterText = v
			if v == "" {
				return nil
			}
			n, err := filter.Parse(v)
			if err != nil {
				return &Error{Kind: ErrBadRequest, Message: err.Error(), Data: map[string]any{"stringToParse": v}, Err: err}
			}
			q.Filter = n
			return nil
		},
	},
	"limit": {
		description: "Maximum number of objects (after filtering); 0 returns none, negative or fractional values mean no limit",
		schema:      map[string]any{"type": "number"},
		parse:       parseLimit,
	},
	"ndjson":    flagParam("Answer newline-delimited JSON (application/x-ndjson)", func(q *Query) *bool { return &q.NDJSON }),
	"markdown":  flagParam("Answer a markdown table (text/markdown)", func(q *Query) *bool { return &q.Markdown }),
	"watch":     flagParam("With ndjson: stream [\"update\", object] and [\"remove\", {href}] lines as objects change", func(q *Query) *bool { return &q.Watch }),
	"sync":      flagParam("Run the action synchronously and answer its result", func(q *Query) *bool { return &q.Sync }),
	"raw":       flagParam("Raw disk image instead of VHD", func(q *Query) *bool { return &q.Raw }),
	"preferNbd": flagParam("Read the disk through NBD when possible", func(q *Query) *bool { return &q.PreferNBD }),
	"granularity": {
		description: "Stats resolution: seconds (default, 5 s × 120 points), minutes (1 min × 120), hours (1 h × 168) or days (1 day × 366)",
		schema:      map[string]any{"type": "string", "enum": []any{"seconds", "minutes", "hours", "days"}},
		parse: func(q *Query, v string) error {
			if _, ok := granularities[v]; !ok {
				return errors.New(granularityEnum)
			}
			q.Granularity = v
			return nil
		},
	},
	"wait": {
		description: "result or true: answer when the task ends; any other value: answer at its next change",
		schema:      stringSchema,
		parse: func(q *Query, v string) error {
			switch strings.ToLower(v) {
			case "result", "true":
				q.Wait = WaitResult
			case "false":
				q.Wait = WaitNone
			default:
				q.Wait = WaitChange
			}
			return nil
		},
	},
}

// flagParam declares a boolean flag stored at field(q).
func flagParam(description string, field func(*Query) *bool) paramSpec {
	return paramSpec{
		description: description + ". A bare key or =true means on, =false off.",
		schema:      flagSchema,
		parse: func(q *Query, v string) error {
			switch strings.ToLower(v) {
			case "", "true":
				*field(q) = true
			case "false":
				*field(q) = false
			default:
				return errors.New("invalid boolean value")
			}
			return nil
		},
	}
}

// decimalRE is the syntax limit accepts.
var decimalRE = regexp.MustCompile(`^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$`)

func parseLimit(q *Query, v string) error {
	if !decimalRE.MatchString(v) {
		return errors.New("invalid number value")
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return errors.New("invalid number value")
	}
	switch {
	case f < 0 || f != float64(int64(f)) || err != nil:
		q.Limit = -1 // never counts down to exactly 0: no limit, as in XO
	case f > float64(int(^uint(0)>>1)):
		q.Limit = -1
	default:
		q.Limit = int(f)
	}
	return nil
}

// ParseQuery parses the query parameters named in accepted (keys of the
// parameter table) from values. Other parameters are ignored, as XO does.
// Errors are *Error: a repeated parameter or a bad value is a 422 whose data
// is {"<param>": {"message", "value"}}, a bad filter a 400 with data
// {stringToParse}, ndjson with markdown a 422, watch without ndjson a 400.
func ParseQuery(values url.Values, accepted []string) (Query, error) {
	q := Query{Limit: -1}
	for _, name := range accepted {
		vs, ok := values[name]
		if !ok {
			continue
		}
		spec, ok := paramSpecs[name]
		if !ok {
			continue
		}
		if len(vs) > 1 {
			return Query{}, paramError(name, "repeated parameter", strings.Join(vs, ","))
		}
		if err := spec.parse(&q, vs[0]); err != nil {
			if _, ok := errors.AsType[*Error](err); ok {
				return Query{}, err
			}
			return Query{}, paramError(name, err.Error(), vs[0])
		}
	}
	if q.NDJSON && q.Markdown {
		return Query{}, InvalidParameters("Cannot use both ndjson and markdown output formats simultaneously", nil)
	}
	if q.Watch && !q.NDJSON {
		return Query{}, BadRequest("watch=true requires ndjson=true", nil)
	}
	return q, nil
}

// paramError is the 422 of a bad query parameter value.
func paramError(name, msg, value string) *Error {
	return InvalidParameters("invalid parameters", map[string]any{name: map[string]any{"message": msg, "value": value}})
}
