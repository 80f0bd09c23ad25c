package xapisim

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
)

// taskClass is the registry class of tasks.
const taskClass = "task"

// taskRun is the runtime state of a task whose work runs in the simulator.
type taskRun struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool
}

// noTaskFor lists the classes whose sync calls run without a DB task
// (XAPI's no_task_id_for).
func noTaskFor(method string) bool {
	cls, _, _ := strings.Cut(method, ".")
	return cls == taskClass || cls == sessionClass || cls == "event" || cls == "system"
}

// newTask creates a pending task record and returns its ref.
func (s *Simulator) newTask(label, description string, cancellable bool) string {
	host := s.MasterHost()
	now := s.Now()
	var ref string
	_ = s.DB.Write(func(tx *Tx) error {
		rec := NewRecord(taskClass)
		rec["name_label"] = label
		rec["name_description"] = description
		rec["status"] = "pending"
		rec["progress"] = float64(0)
		rec["created"] = now
		rec["finished"] = epoch
		rec["resident_on"] = host
		rec["type"] = "<none/>"
		rec["subtask_of"] = NullRef
		rec["backtrace"] = "()"
		if cancellable {
			rec["allowed_operations"] = []string{"cancel"}
		}
		ref = tx.Create(taskClass, rec)
		return nil
	})
	return ref
}

// CreateTask creates a pending task as task.create does and returns its
// ref. Data-plane handlers use it for transfers without a task_id.
func (s *Simulator) CreateTask(label, description string) string {
	return s.newTask(label, description, false)
}

// startAsync runs call in a new task (the Async. form) and returns the
// task ref at once. The work gets a context of its own, cancelled by
// task.cancel, not by the client going away.
func (s *Simulator) startAsync(call *Call, m Method, label string) string {
	ref := s.newTask(label, "", true)
	ctx, cancel := context.WithCancel(context.WithoutCancel(call.Ctx))
	run := &taskRun{cancel: cancel}
	s.tasksMu.Lock()
	s.tasks[ref] = run
	s.tasksMu.Unlock()
	call.Ctx = ctx
	call.Task = ref
	go func() {
		res, err := s.invoke(call, m)
		s.tasksMu.Lock()
		delete(s.tasks, ref)
		s.tasksMu.Unlock()
		if err == nil && run.cancelled.Load() && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil && run.cancelled.Load() && errors.Is(err, context.Canceled) {
			err = NewFault("TASK_CANCELLED", ref)
		}
		cancel()
		s.CompleteTask(ref, res, err)
	}()
	return ref
}

// runTransient gives a sync call of an async-capable method a task of its
// own, as XAPI does, so handlers can always record {task: op} in
// current_operations. endTask destroys it.
func (s *Simulator) runTransient(call *Call, label string) {
	if noTaskFor(call.Method) {
		return
	}
	ref := s.newTask(label, "", false)
	ctx, cancel := context.WithCancel(call.Ctx)
	run := &taskRun{cancel: cancel}
	s.tasksMu.Lock()
	s.tasks[ref] = run
	s.tasksMu.Unlock()
	call.Ctx = ctx
	call.Task = ref
}

func (s *Simulator) endTask(ref string) {
	s.tasksMu.Lock()
	if run := s.tasks[ref]; run != nil {
		run.cancel()
		delete(s.tasks, ref)
	}
	s.tasksMu.Unlock()
	_ = s.DB.Write(func(tx *Tx) error {
		tx.Delete(ref)
		return nil
	})
}

// CompleteTask completes task ref as XAPI's TaskHelper does: with err nil
// it succeeds with result encoded as an XML-RPC value fragment; a
// TASK_CANCELLED fault cancels it; any other error fails it with the
// fault's description in error_info (non-faults as INTERNAL_ERROR). A task
// that is already complete or destroyed is left alone.
func (s *Simulator) CompleteTask(ref string, result any, err error) {
	now := s.Now()
	var frag string
	if err == nil {
		var encErr error
		frag, encErr = EncodeXMLValue(result)
		if encErr != nil {
			err = encErr
		}
	}
	_ = s.DB.Write(func(tx *Tx) error {
		rec, ok := tx.GetClass(taskClass, ref)
		if !ok {
			return nil
		}
		if st, _ := rec["status"].(string); st != "pending" && st != "cancelling" {
			return nil
		}
		rec = tx.Modify(ref)
		rec["progress"] = float64(1)
		rec["finished"] = now
		rec["allowed_operations"] = []string{}
		rec["current_operations"] = map[string]string{}
		if err == nil {
			rec["status"] = "success"
			rec["result"] = frag
			return nil
		}
		f := asFault(err)
		rec["error_info"] = f.Description()
		rec["backtrace"] = "()"
		if f.Code == "TASK_CANCELLED" {
			rec["status"] = "cancelled"
		} else {
			rec["status"] = "failure"
		}
		return nil
	})
}

// SetProgress records the progress (0..1) of the call's task, if any.
func (c *Call) SetProgress(p float64) {
	if c.Task == "" || c.Sim == nil {
		return
	}
	_ = c.Sim.DB.Write(func(tx *Tx) error {
		if _, ok := tx.GetClass(taskClass, c.Task); ok {
			tx.Modify(c.Task)["progress"] = p
		}
		return nil
	})
}

// Cancelled reports whether task.cancel was called on the call's task.
// Handlers of long operations check it (or c.Ctx.Done()) and then return
// NewFault("TASK_CANCELLED", c.Task).
func (c *Call) Cancelled() bool {
	if c.Task == "" || c.Sim == nil {
		return false
	}
	c.Sim.tasksMu.Lock()
	defer c.Sim.tasksMu.Unlock()
	run := c.Sim.tasks[c.Task]
	return run != nil && run.cancelled.Load()
}

// taskStatuses are the values of task_status_type.
var taskStatuses = []string{"pending", "success", "failure", "cancelling", "cancelled"}

func (s *Simulator) registerTask() {
	s.Register("task.create", Method{Params: 2, Handler: func(c *Call) (any, error) {
		label, err := c.String(0)
		if err != nil {
			return nil, err
		}
		desc, err := c.String(1)
		if err != nil {
			return nil, err
		}
		return c.Sim.newTask(label, desc, false), nil
	}})
	s.Register("task.cancel", Method{Params: 1, Async: true, Handler: func(c *Call) (any, error) {
		ref, err := c.String(0)
		if err != nil {
			return nil, err
		}
		caller := c.Task
		if caller == "" {
			caller = "OpaqueRef:" + c.Sim.DB.NewUUID()
		}
		err = c.modify(taskClass, func(rec Record) error {
			if st, _ := rec["status"].(string); st != "pending" {
				return nil
			}
			ops := map[string]string{}
			for k, v := range stringMap(rec, "current_operations") {
				ops[k] = v
			}
			ops[caller] = "cancel"
			rec["current_operations"] = ops
			return nil
		})
		if err != nil {
			return nil, err
		}
		c.Sim.tasksMu.Lock()
		run := c.Sim.tasks[ref]
		c.Sim.tasksMu.Unlock()
		if run != nil {
			run.cancelled.Store(true)
			run.cancel()
		}
		return nil, nil
	}})
	s.Register("task.destroy", Method{Params: 1, Handler: func(c *Call) (any, error) {
		ref, err := c.String(0)
		if err != nil {
			return nil, err
		}
		return nil, c.Sim.DB.Write(func(tx *Tx) error {
			rec, ok := tx.GetClass(taskClass, ref)
			if !ok {
				return HandleInvalid(taskClass, ref)
			}
			switch rec["status"] {
			case "success", "failure", "cancelled":
				tx.Delete(ref)
			default:
				stringMap(tx.Modify(ref), "current_operations")["task"] = "destroy"
			}
			return nil
		})
	}})
	s.Register("task.set_status", Method{Params: 2, Handler: func(c *Call) (any, error) {
		v, err := c.String(1)
		if err != nil {
			return nil, err
		}
		status := ""
		for _, st := range taskStatuses {
			if strings.EqualFold(st, v) {
				status = st
			}
		}
		if status == "" {
			return nil, NewFault("INVALID_VALUE", "status", v)
		}
		return nil, c.setTaskField("status", status)
	}})
	s.Register("task.set_progress", Method{Params: 2, Handler: func(c *Call) (any, error) {
		v, err := c.Float(1)
		if err != nil {
			return nil, err
		}
		return nil, c.setTaskField("progress", v)
	}})
	s.Register("task.set_result", Method{Params: 2, Handler: func(c *Call) (any, error) {
		v, err := c.String(1)
		if err != nil {
			return nil, err
		}
		return nil, c.setTaskField("result", v)
	}})
	s.Register("task.set_error_info", Method{Params: 2, Handler: func(c *Call) (any, error) {
		v, err := c.Strings(1)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = []string{}
		}
		return nil, c.setTaskField("error_info", v)
	}})
	s.Register("task.set_resident_on", Method{Params: 2, Handler: func(c *Call) (any, error) {
		v, err := c.String(1)
		if err != nil {
			return nil, err
		}
		return nil, c.setTaskField("resident_on", v)
	}})
	s.Register("task.set_other_config", Method{Params: 2, Handler: func(c *Call) (any, error) {
		f, _ := Schema(taskClass)
		fs, _ := f.Field("other_config")
		v, err := c.fieldArg(1, fs)
		if err != nil {
			return nil, err
		}
		return nil, c.setTaskField("other_config", v)
	}})
	s.Register("task.add_to_other_config", Method{Params: 3, Handler: func(c *Call) (any, error) {
		ref, _ := c.String(0)
		key, err := c.String(1)
		if err != nil {
			return nil, err
		}
		val, err := c.String(2)
		if err != nil {
			return nil, err
		}
		return nil, c.modify(taskClass, func(rec Record) error {
			m := stringMap(rec, "other_config")
			if _, dup := m[key]; dup {
				return NewFault("MAP_DUPLICATE_KEY", taskClass, "other_config", ref, key)
			}
			m[key] = val
			return nil
		})
	}})
	s.Register("task.remove_from_other_config", Method{Params: 2, Handler: func(c *Call) (any, error) {
		key, err := c.String(1)
		if err != nil {
			return nil, err
		}
		return nil, c.modify(taskClass, func(rec Record) error {
			delete(stringMap(rec, "other_config"), key)
			return nil
		})
	}})
}

func (c *Call) setTaskField(field string, v any) error {
	return c.modify(taskClass, func(rec Record) error {
		rec[field] = v
		return nil
	})
}
