// Package deploy holds the deployment files of switchyard: the container image
// (Dockerfile), the systemd unit (systemd/) and the Kubernetes manifests of a cluster
// (k8s/); docs/deploy.md explains them. They cannot run in the test environment, so
// the package's test parses them and checks every command, flag, config key,
// environment override, port and probe they use against the real binary and schema.
package deploy
