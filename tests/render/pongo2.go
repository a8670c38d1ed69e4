// pongo2 itself rendering the cases of tests/render.rs, as LXD applies a template: the text
// wrapped in {% autoescape off %}…{% endautoescape %}, the tags newer LXD and Incus ban banned,
// the variables and config_get as lxd/instance/drivers/driver_lxc.go builds them.
//
// Built by tests/render.rs with Debian's golang-go and golang-github-flosch-pongo2.v4-dev
// (GOPATH mode, offline). Reads a JSON array of cases on stdin, writes a JSON array of results.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flosch/pongo2"
	"lxdimg.test/config"
)

type renderContext struct {
	Name         string                       `json:"name"`
	Type         string                       `json:"type"`
	Architecture string                       `json:"architecture"`
	Ephemeral    bool                         `json:"ephemeral"`
	Config       map[string]string            `json:"config"`
	Devices      map[string]map[string]string `json:"devices"`
	Properties   map[string]string            `json:"properties"`
	Trigger      string                       `json:"trigger"`
	Path         string                       `json:"path"`
}

type testCase struct {
	Name     string        `json:"name"`
	Template string        `json:"template"`
	Context  renderContext `json:"context"`
	// Raw: pongo2's FromString(template) alone (autoescape on, nothing banned).
	Raw bool `json:"raw"`
}

type result struct {
	Name   string  `json:"name"`
	Output *string `json:"output"`
	Error  *string `json:"error"`
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

func run(c testCase) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Panic while rendering template: %v", r)
		}
	}()
	set := pongo2.NewSet("lxdimg", pongo2.DefaultLoader)
	text := c.Template
	if !c.Raw {
		for _, tag := range []string{"extends", "import", "include", "ssi"} {
			if e := set.BanTag(tag); e != nil {
				return "", e
			}
		}
		text = "{% autoescape off %}" + text + "{% endautoescape %}"
	}
	tpl, err := set.FromString(text)
	if err != nil {
		return "", fmt.Errorf("Failed to render template: %w", err)
	}
	ctx := c.Context
	meta := map[string]string{
		"name":         ctx.Name,
		"type":         ctx.Type,
		"architecture": ctx.Architecture,
		"ephemeral":    fmt.Sprintf("%t", ctx.Ephemeral),
	}
	if ctx.Type != "virtual-machine" {
		meta["privileged"] = fmt.Sprintf("%t", isTrue(ctx.Config["security.privileged"]))
	}
	if ctx.Config == nil {
		ctx.Config = map[string]string{}
	}
	devices := config.Devices{}
	for name, d := range ctx.Devices {
		devices[name] = config.Device(d)
	}
	configGet := func(confKey, confDefault *pongo2.Value) *pongo2.Value {
		val, ok := ctx.Config[confKey.String()]
		if !ok {
			return confDefault
		}
		return pongo2.AsValue(strings.TrimRight(val, "\r\n"))
	}
	s, err := tpl.Execute(pongo2.Context{
		"trigger":    ctx.Trigger,
		"path":       ctx.Path,
		"container":  meta,
		"instance":   meta,
		"config":     ctx.Config,
		"devices":    devices,
		"properties": ctx.Properties,
		"config_get": configGet,
	})
	if err != nil {
		return "", fmt.Errorf("Failed to render template: %w", err)
	}
	return s, nil
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "pongo2 harness:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(cases))
	for _, c := range cases {
		// pongo2 can loop for ever on some templates (LXD then hangs applying them): a case
		// that takes over 5 s is reported as such (its goroutine spins until the process ends).
		type outcome struct {
			out string
			err error
		}
		done := make(chan outcome, 1)
		go func(c testCase) {
			out, err := run(c)
			done <- outcome{out, err}
		}(c)
		var out string
		var err error
		select {
		case o := <-done:
			out, err = o.out, o.err
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("pongo2 did not finish within 5 s")
		}
		r := result{Name: c.Name}
		if err != nil {
			e := err.Error()
			r.Error = &e
		} else {
			r.Output = &out
		}
		results = append(results, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "pongo2 harness:", err)
		os.Exit(2)
	}
}
