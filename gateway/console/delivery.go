package console

import (
	"github.com/gatehouse-id/gatehouse/gateway/admin"
)

type deliveryData struct {
	Adapters    []admin.DeliveryStatus
	DeadLetters []admin.DeadLetterView
}

func (c *Console) deliveryPage(q *req, status int, errText string) {
	var d deliveryData
	if c.opts.Delivery != nil {
		st, err := c.opts.Delivery.Status(q.ctx(), q.org())
		if err != nil {
			status, errText = c.errorText(q, err)
		}
		d.Adapters = st
		for _, s := range st {
			dls, err := c.opts.Delivery.DeadLetters(q.ctx(), q.org(), s.Adapter)
			if err != nil {
				status, errText = c.errorText(q, err)
				continue
			}
			for _, dl := range dls {
				d.DeadLetters = append(d.DeadLetters, admin.ViewDeadLetter(s.Adapter, dl))
			}
		}
	}
	c.render(q, status, "delivery", "Delivery", "delivery", d, notice(q.r), errText)
}

func (c *Console) replay(q *req) {
	mg := c.manager(q)
	if _, err := admin.ReplayDeadLetter(q.ctx(), c.opts.Delivery, c.opts.Store, mg, q.r.PathValue("id")); err != nil {
		status, text := c.errorText(q, err)
		c.deliveryPage(q, status, text)
		return
	}
	c.done(q, c.opts.PathPrefix+"/console/delivery", "replayed")
}
