// kindcheck: decodes kind cluster configs strictly into kind's own config types (sigs.k8s.io/kind's
// v1alpha4.Cluster, the pinned release), so an unknown or misspelt field fails `make lint`, as kind would
// refuse it at `kind create cluster`.
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func main() {
	failed := false
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err == nil {
			var cluster v1alpha4.Cluster
			err = yaml.UnmarshalStrict(data, &cluster)
			if err == nil && (cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4") {
				err = fmt.Errorf("kind/apiVersion are %q/%q, not Cluster/kind.x-k8s.io/v1alpha4", cluster.Kind, cluster.APIVersion)
			}
			if err == nil && len(cluster.Nodes) == 0 {
				err = fmt.Errorf("no nodes")
			}
			for _, node := range cluster.Nodes {
				if err == nil && node.Role != v1alpha4.ControlPlaneRole && node.Role != v1alpha4.WorkerRole {
					err = fmt.Errorf("node role %q is neither control-plane nor worker", node.Role)
				}
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
		} else {
			fmt.Printf("%s: a valid kind v1alpha4 Cluster\n", path)
		}
	}
	if failed {
		os.Exit(1)
	}
}
