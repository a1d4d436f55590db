/**
 * The simple kubeconfig YAML parser against js-yaml: for every text it either declines or
 * gives exactly what js-yaml gives, on kubeconfigs as tools write them and on random
 * mutations of them.
 */
import assert from "node:assert/strict";
import { load } from "js-yaml";
import { FullYamlNeeded, loadFullYaml, parseYaml } from "../../lib/kube/yaml.ts";

const DECLINED = Symbol("declined");

/**
 * The simple parser alone: parseYaml() until js-yaml is loaded (the last test of this file
 * loads it), `DECLINED` where it needs js-yaml.
 */
function parseSimpleYaml(text: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    if (err instanceof FullYamlNeeded) return DECLINED;
    throw err;
  }
}

const KUBECTL = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqVENDQVRPZ0F3SUJBZ0lV
    server: https://127.0.0.1:6443
  name: kind-kind
- cluster:
    insecure-skip-tls-verify: true
    proxy-url: http://user:p%40ss@proxy:3128
    server: https://api.example.com
    tls-server-name: kubernetes
  name: prod
contexts:
- context:
    cluster: kind-kind
    namespace: ci
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - eu-west-1
      - eks
      - get-token
      command: aws
      env:
      - name: AWS_PROFILE
        value: ci
      - name: EMPTY
        value: ""
      interactiveMode: IfAvailable
      provideClusterInfo: false
`;

const PYYAML = `# written by a cloud CLI
apiVersion: v1
clusters:
  - cluster:
      certificate-authority-data: 'LS0t'
      server: "https://10.0.0.1"   # private endpoint
    name: "arn:aws:eks:eu-west-1:123:cluster/ci"
contexts:
  - context: {cluster: x, user: y}
    name: c
current-context: c
users:
  - name: 'it''s me'
    user:
      token: "abc\\tdef\\u00e9\\"q\\""
      as-groups:
        - system:masters
        - "ops: team"
      username: ~
      password:
      timeout: 30
      weird key: -5
`;

const SUPPORTED = [
  KUBECTL,
  KUBECTL.replaceAll("\n", "\r\n"),
  `\uFEFF${KUBECTL}`,
  `# comment only line\n${KUBECTL}\n# trailing\n`,
  "a: 1\nb:\n  c: true\n  d: False\n  e: NULL\n  f: -12\n  g: 0\n",
  "list:\n- \n- a\n-\n- b # note\nafter: 'x' # c\n",
  "k: v:x\nurl: http://a/b#frag\nhash: a#b\n",
  '{"apiVersion":"v1","clusters":[{"name":"a","cluster":{"server":"https://x"}}]}',
];

const DECLINES = [
  "a: &x 1\nb: *x\n",
  "a: |\n  text\n",
  "a: >\n  text\n",
  "a: [1, 2]\n",
  "a: {b: 1}\n",
  "a: first\n  continued\n",
  'a: "open\n  closed"\n',
  "a: 1\na: 2\n",
  "a: 2024-01-01\n",
  "a: 1.5\n",
  "a: 0x10\n",
  "a: .inf\n",
  "a:\tb\n",
  "\ta: 1\n",
  "---\na: 1\n",
  "%YAML 1.2\n---\na: 1\n",
  "a: !!str 1\n",
  "? a\n: b\n",
  "<<: {a: 1}\n",
  "1: a\n",
  "- a\n- b\n",
  '{"a": 1, "a": 2}',
  '{"__proto__": {"x": 1}}',
  "a: b: c\n",
  "nested:\n  - - no\n",
  'a: "tab\there"\n',
  "",
  "# nothing\n",
];

Deno.test("parseSimpleYaml() reads kubeconfigs as kubectl and cloud CLIs write them, as js-yaml does", () => {
  for (const text of SUPPORTED) {
    const simple = parseSimpleYaml(text);
    assert.notEqual(simple, DECLINED, JSON.stringify(text));
    assert.deepEqual(simple, load(text), JSON.stringify(text));
  }
});

/** A small seeded generator, so that a failure can be reproduced. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

Deno.test("parseSimpleYaml() gives js-yaml's value or declines, for 4000 mutated kubeconfigs", () => {
  const next = random(42);
  const pieces = [
    " ",
    "  ",
    "#",
    ":",
    ": ",
    "-",
    "- ",
    '"',
    "'",
    "\\",
    "a",
    "1",
    "\n",
    "{",
    "[",
    "&",
    "*",
    "!",
    "|",
    ">",
    "\t",
    ".",
    "~",
    "0",
    "''",
    '\\"',
    "x: y",
    "\n  ",
  ];
  const bases = [KUBECTL, PYYAML, SUPPORTED[4]!, SUPPORTED[5]!];
  let accepted = 0;
  for (let n = 0; n < 4000; n++) {
    let text = bases[Math.floor(next() * bases.length)]!;
    for (let k = 1 + Math.floor(next() * 3); k > 0; k--) {
      const at = Math.floor(next() * text.length);
      const cut = next() < 0.3 ? 1 + Math.floor(next() * 3) : 0;
      text = text.slice(0, at) + pieces[Math.floor(next() * pieces.length)] + text.slice(at + cut);
    }
    const simple = parseSimpleYaml(text);
    if (simple === DECLINED) continue;
    accepted++;
    let full: unknown;
    try {
      full = load(text);
    } catch (err) {
      assert.fail(`accepted what js-yaml refuses (${err}): ${JSON.stringify(text)}`);
    }
    assert.deepEqual(simple, full, JSON.stringify(text));
  }
  // Most mutations leave a readable file: the comparison is not vacuous.
  assert.ok(accepted > 500, `only ${accepted} accepted`);
});

Deno.test("parseSimpleYaml() declines what it does not read, and parseYaml() then needs js-yaml", async () => {
  for (const text of [...DECLINES, PYYAML]) {
    assert.equal(parseSimpleYaml(text), DECLINED, JSON.stringify(text));
  }
  assert.throws(() => parseYaml("a: [1]\n"), FullYamlNeeded);
  await loadFullYaml();
  assert.deepEqual(parseYaml("a: [1]\n"), { a: [1] });
  assert.deepEqual(parseYaml(PYYAML), load(PYYAML));
  assert.throws(() => parseYaml("a: 1\na: 2\n"), /duplicated mapping key/);
});
