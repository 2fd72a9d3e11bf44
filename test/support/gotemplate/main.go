// Renders a k3s/rke2 containerd config template the way k3s does at every start
// (k3s pkg/agent/templates: ParseTemplateFromConfig parses the user template, defines the
// stock config as the template "base", executes it with the agent's config), using Go's real
// text/template, so the tests see exactly what trim markers do to the agent's block.
//
// Usage: gotemplate <template file> <base file> <data json file>; the rendering goes to stdout.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gotemplate TEMPLATE BASE DATA.json")
		os.Exit(2)
	}
	user, err := os.ReadFile(os.Args[1])
	check(err)
	base, err := os.ReadFile(os.Args[2])
	check(err)
	raw, err := os.ReadFile(os.Args[3])
	check(err)
	var data map[string]interface{}
	check(json.Unmarshal(raw, &data))
	t, err := template.New("compiled_template").Parse(string(user))
	check(err)
	_, err = t.New("base").Parse(string(base))
	check(err)
	check(t.Execute(os.Stdout, data))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
