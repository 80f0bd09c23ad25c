package xapisim

import (
	"fmt"
	"slices"
	"time"
)

// messageClasses is the cls enum.
var messageClasses = []string{"VM", "Host", "SR", "Pool", "VMPP", "VMSS", "PVS_proxy", "VDI", "Certificate"}

// createMessages creates Model.Messages messages about the pool's objects:
// alarms on hosts, VM start events and an SR notice, in turn.
func (p *poolState) createMessages(tx *Tx) {
	vms := []string{}
	for _, vm := range tx.All("VM") {
		rec, _ := tx.GetClass("VM", vm)
		if !rec["is_a_template"].(bool) && !rec["is_control_domain"].(bool) {
			vms = append(vms, str(rec, "uuid"))
		}
	}
	slices.Sort(vms)
	for i := range p.m.Messages {
		at := baseTime.Add(time.Duration(i) * time.Minute)
		var name, cls, obj, body string
		var prio int64
		switch i % 3 {
		case 0:
			name, cls, prio = "ALARM", "Host", 3
			obj = uuidOf(tx, p.hosts[i%len(p.hosts)])
			body = "value: 0.950000\nconfig:\n<variable>\n\t<name value=\"cpu_usage\"/>\n\t<alarm_trigger_level value=\"0.9\"/>\n\t<alarm_trigger_period value=\"60\"/>\n\t<alarm_auto_inhibit_period value=\"3600\"/>\n</variable>\n"
		case 1:
			name, cls, prio = "VM_STARTED", "VM", 5
			if len(vms) > 0 {
				obj = vms[i%len(vms)]
			} else {
				cls, obj = "Pool", uuidOf(tx, p.pool)
			}
			body = "VM started"
		default:
			name, cls, prio = "SR_BACKEND_FAILURE_NOTICE", "Pool", 4
			obj = uuidOf(tx, p.pool)
			body = fmt.Sprintf("Simulated notice %d", i)
		}
		newObject(tx, "message", Record{
			"name": name, "priority": prio, "cls": cls, "obj_uuid": obj, "timestamp": at, "body": body,
		})
	}
}

// registerMessage registers the message messages.
func registerMessage(s *Simulator) {
	s.Register("message.create", Method{Handler: messageCreate, Params: 5})
	s.Register("message.destroy", Method{Handler: messageDestroy, Params: 1})
	s.Register("message.destroy_many", Method{Handler: messageDestroyMany, Params: 1})
	s.Register("message.get_since", Method{Handler: messageGetSince, Params: 1})
	s.Register("message.get", Method{Handler: messageGet, Params: 3})
}

// messageCreate implements message.create(name, priority, cls, obj_uuid,
// body): the object must exist (UUID_INVALID otherwise).
func messageCreate(c *Call) (any, error) {
	name, err := c.String(0)
	if err != nil {
		return nil, err
	}
	prio, err := c.Int(1)
	if err != nil {
		return nil, err
	}
	cls, err := c.String(2)
	if err != nil {
		return nil, err
	}
	obj, err := c.String(3)
	if err != nil {
		return nil, err
	}
	body, err := c.String(4)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(messageClasses, cls) {
		return nil, NewFault("INVALID_VALUE", "cls", cls)
	}
	var ref string
	err = c.Sim.DB.Write(func(tx *Tx) error {
		if _, _, ok := tx.ByUUID(obj); !ok {
			return NewFault("UUID_INVALID", cls, obj)
		}
		ref = newObject(tx, "message", Record{
			"name": name, "priority": prio, "cls": cls, "obj_uuid": obj,
			"timestamp": c.Sim.Now(), "body": body,
		})
		return nil
	})
	return ref, err
}

func messageDestroy(c *Call) (any, error) {
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		ref, _, err := refArg(tx, c, 0, "message")
		if err != nil {
			return err
		}
		deleteObject(tx, ref)
		return nil
	})
}

func messageDestroyMany(c *Call) (any, error) {
	refs, err := c.Strings(0)
	if err != nil {
		return nil, err
	}
	return nil, c.Sim.DB.Write(func(tx *Tx) error {
		for _, ref := range refs {
			if _, ok := tx.GetClass("message", ref); !ok {
				return NewFault("HANDLE_INVALID", "message", ref)
			}
		}
		for _, ref := range refs {
			deleteObject(tx, ref)
		}
		return nil
	})
}

// messageRecords returns the messages accepted by keep, keyed by ref.
func messageRecords(c *Call, keep func(Record) bool) map[string]any {
	out := map[string]any{}
	c.Sim.DB.Read(func(tx *Tx) {
		for _, ref := range tx.All("message") {
			rec, _ := tx.GetClass("message", ref)
			if keep(rec) {
				out[ref] = rec.Clone()
			}
		}
	})
	return out
}

// messageGetSince implements message.get_since(since): messages strictly
// newer than since.
func messageGetSince(c *Call) (any, error) {
	since, err := c.Time(0)
	if err != nil {
		return nil, err
	}
	return messageRecords(c, func(r Record) bool { return r["timestamp"].(time.Time).After(since) }), nil
}

// messageGet implements message.get(cls, obj_uuid, since).
func messageGet(c *Call) (any, error) {
	cls, err := c.String(0)
	if err != nil {
		return nil, err
	}
	obj, err := c.String(1)
	if err != nil {
		return nil, err
	}
	since, err := c.Time(2)
	if err != nil {
		return nil, err
	}
	return messageRecords(c, func(r Record) bool {
		return str(r, "cls") == cls && str(r, "obj_uuid") == obj && r["timestamp"].(time.Time).After(since)
	}), nil
}
