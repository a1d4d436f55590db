/**
 * The helm settings that decide which cluster, identity and namespace helm talks to.
 * Parsed from helm's own flags by `lib/cli/args.ts`; turned into a Kubernetes client by
 * `lib/kube/connection.ts`, which falls back to the `HELM_*` environment the same way helm does.
 * @module
 */

/** Connection flags as the user gave them to helm. Absent flags are `undefined`. */
export interface ClusterFlags {
  /** `-n` / `--namespace` */
  namespace?: string;
  /** `--kube-context` */
  kubeContext?: string;
  /** `--kubeconfig` */
  kubeconfig?: string;
  /** `--kube-apiserver` */
  kubeApiserver?: string;
  /** `--kube-token` (a secret: never print it) */
  kubeToken?: string;
  /** `--kube-ca-file` */
  kubeCaFile?: string;
  /** `--kube-insecure-skip-tls-verify` */
  kubeInsecureSkipTlsVerify?: boolean;
  /** `--kube-as-user` */
  kubeAsUser?: string;
  /** `--kube-as-group` (repeatable) */
  kubeAsGroups?: string[];
  /** `--kube-tls-server-name` */
  kubeTlsServerName?: string;
}
