/**
 * The helm flags that pick the cluster, identity and namespace (`connection.ts` resolves them).
 * @module
 */

/**
 * Connection flags as the user gave them to helm, each named after its flag (`kubeAsGroups`:
 * `--kube-as-group`, repeatable); absent flags are `undefined`.
 */
export interface ClusterFlags {
  /** `-n` / `--namespace` */
  namespace?: string;
  kubeContext?: string;
  kubeconfig?: string;
  kubeApiserver?: string;
  /** A secret: never print it. */
  kubeToken?: string;
  kubeCaFile?: string;
  kubeInsecureSkipTlsVerify?: boolean;
  kubeAsUser?: string;
  kubeAsGroups?: string[];
  kubeTlsServerName?: string;
}
