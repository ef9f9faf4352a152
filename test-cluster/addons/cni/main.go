// harness-cni is the test cluster's stand-in for kind's kindnet, which is
// not packaged in Debian. It runs as a DaemonSet on every node (host
// network, NET_ADMIN) and does two things from the Node objects:
//
//   - writes the node's CNI config (bridge + host-local over the node's
//     spec.podCIDR, portmap for hostPort) into /etc/cni/net.d, which is
//     what makes the kubelet report the node Ready;
//   - keeps a route to every other node's pod CIDR via that node's
//     InternalIP, so pods on different nodes reach each other (kind's
//     nodes share one Docker network).
//
// No NetworkPolicy, no IPv6, no MTU discovery.
package main

import (
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

const confPath = "/etc/cni/net.d/10-harness.conflist"

const confTemplate = `{
  "cniVersion": "0.4.0",
  "name": "harness",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

func internalIP(node *corev1.Node) net.IP {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil && ip.To4() != nil {
				return ip
			}
		}
	}
	return nil
}

// writeConf writes the config when it differs, atomically: the kubelet
// and containerd read the directory at any moment.
func writeConf(podCIDR string) error {
	want := fmt.Sprintf(confTemplate, podCIDR)
	if have, err := ioutil.ReadFile(confPath); err == nil && string(have) == want {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(confPath), ".10-harness.conflist.tmp")
	if err := ioutil.WriteFile(tmp, []byte(want), 0o644); err != nil {
		return err
	}
	log.Printf("writing %s for pod CIDR %s", confPath, podCIDR)
	return os.Rename(tmp, confPath)
}

func sync(self string, nodes []*corev1.Node) {
	for _, node := range nodes {
		if node.Spec.PodCIDR == "" {
			continue
		}
		if node.Name == self {
			if err := writeConf(node.Spec.PodCIDR); err != nil {
				log.Printf("cannot write the CNI config: %v", err)
			}
			continue
		}
		_, dst, err := net.ParseCIDR(node.Spec.PodCIDR)
		gw := internalIP(node)
		if err != nil || gw == nil {
			continue
		}
		route := netlink.Route{Dst: dst, Gw: gw}
		if err := netlink.RouteReplace(&route); err != nil {
			log.Printf("cannot route %s via %s (node %s): %v", dst, gw, node.Name, err)
		}
	}
}

func main() {
	self := os.Getenv("NODE_NAME")
	if self == "" {
		log.Fatal("NODE_NAME is not set (the DaemonSet passes spec.nodeName)")
	}
	config, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	// Pods reach the API server through its Service only once kube-proxy
	// has written its rules; kind passes the control plane's own address
	// (see default-cni.yaml) so the network does not wait for that.
	if endpoint := os.Getenv("CONTROL_PLANE_ENDPOINT"); endpoint != "" {
		config.Host = "https://" + endpoint
	}
	clientset := kubernetes.NewForConfigOrDie(config)
	factory := informers.NewSharedInformerFactory(clientset, 10*time.Minute)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	poke := func(interface{}) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, n interface{}) { poke(n) },
		DeleteFunc: poke,
	})
	stop := make(chan struct{})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	log.Printf("node %s: watching nodes", self)
	for range changed {
		all, err := nodes.Lister().List(labels.Everything())
		if err != nil {
			log.Printf("listing nodes: %v", err)
			continue
		}
		sync(self, all)
	}
}
