package main

// Diff, as infer computes it for a resource with an Update method (pulumi-go-provider v1.3.0
// infer/resource.go diff): a property diff of old and new inputs, where a change of the top-level key
// "triggers" (the only replaceOnChanges input) is a replace and every other change, nested trigger elements
// included, is an update.

import (
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

var rpcKinds = map[plugin.DiffKind]pulumirpc.PropertyDiff_Kind{
	plugin.DiffAdd:           pulumirpc.PropertyDiff_ADD,
	plugin.DiffAddReplace:    pulumirpc.PropertyDiff_ADD_REPLACE,
	plugin.DiffDelete:        pulumirpc.PropertyDiff_DELETE,
	plugin.DiffDeleteReplace: pulumirpc.PropertyDiff_DELETE_REPLACE,
	plugin.DiffUpdate:        pulumirpc.PropertyDiff_UPDATE,
	plugin.DiffUpdateReplace: pulumirpc.PropertyDiff_UPDATE_REPLACE,
}

// diff compares values deeply but not into secrets: a changed secret is a change of the key holding it.
// An unknown new value differs from any known old one, so it is a change.
func diff(oldInputs, news resource.PropertyMap) *pulumirpc.DiffResponse {
	news = news.Copy()
	for k := range news {
		// infer ignores these keys of the new inputs (only of the new ones).
		if k == "version" || strings.HasPrefix(string(k), "__") {
			delete(news, k)
		}
	}
	detailed := map[string]*pulumirpc.PropertyDiff{}
	diffs, replaces := map[string]bool{}, map[string]bool{}
	for path, d := range plugin.NewDetailedDiffFromObjectDiff(oldInputs.Diff(news), false) {
		kind := d.Kind
		if path == "triggers" {
			kind = kind.AsReplace()
		}
		detailed[path] = &pulumirpc.PropertyDiff{Kind: rpcKinds[kind]}
		key := topLevelKey(path)
		diffs[key] = true
		if kind.IsReplace() {
			replaces[key] = true
		}
	}
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(detailed) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{
		Changes:         changes,
		DetailedDiff:    detailed,
		HasDetailedDiff: true,
		Diffs:           slices.Sorted(maps.Keys(diffs)),
		Replaces:        slices.Sorted(maps.Keys(replaces)),
	}
}

func topLevelKey(path string) string {
	if p, err := resource.ParsePropertyPath(path); err == nil && len(p) > 0 {
		if key, ok := p[0].(string); ok {
			return key
		}
	}
	return path
}
