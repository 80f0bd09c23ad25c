package handlers

import (
	"fmt"
	"net/http"
)

// tagRoutes returns PUT and DELETE /rest/v0/<c>/<id>/tags/<tag>. The tag
// is one path segment, percent-decoded: a slash in a tag is sent as %2F.
func (s *server) tagRoutes(c writable) []route {
	pattern := BasePath + "/" + c.name + "/{id}/tags/{tag}"
	return []route{
		{
			method: "PUT", pattern: pattern, handler: s.tag(c, "add_tags"), tag: c.name,
			summary: "Add a tag to one " + c.noun + " (the tag is percent-decoded; adding a present tag does nothing)",
			resp:    noContent("The tag is set"),
		},
		{
			method: "DELETE", pattern: pattern, handler: s.tag(c, "remove_tags"), tag: c.name,
			summary: "Remove a tag from one " + c.noun + " (removing an absent tag does nothing)",
			resp:    noContent("The tag is not set"),
		},
	}
}

// tag answers PUT and DELETE on a tag with <class>.<op>(ref, tag), XAPI's
// set operations, so both are idempotent.
func (s *server) tag(c writable, op string) HandlerFunc {
	method := c.class + "." + op
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		tag := r.PathValue("tag")
		if tag == "" {
			return InvalidParameters("the tag must not be empty", nil)
		}
		_, pool, ref, err := s.target(ctx, c.kind, r.PathValue("id"))
		if err != nil {
			return err
		}
		if _, err := pool.Client().Call(ctx, method, ref, tag); err != nil {
			return fmt.Errorf("%s %s: %w", method, ref, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
