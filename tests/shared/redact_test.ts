import assert from "node:assert/strict";
import { ADVERSARIAL, assertLinear } from "../support/linear.ts";
import {
  MASK,
  redactArgs,
  redactCommandLine,
  redactText,
  redactUrls,
  secretArgs,
  secretValues,
} from "../../lib/redact.ts";

const SECRET = "hunter2";

// Every way a user can hand helm a secret; none may survive redaction.
const SECRET_FORMS: string[][] = [
  ["--set", `db.password=${SECRET}`],
  [`--set=db.password=${SECRET}`],
  ["--set-string", `db.password=${SECRET}`],
  [`--set-string=db.password=${SECRET}`],
  ["--set-json", `db={"password":"${SECRET}","user":"app"}`],
  [`--set-json=db={"password":"${SECRET}"}`],
  ["--set-json", `{"db":{"password":"${SECRET}"}}`],
  ["--set-literal", `db.password=${SECRET}`],
  [`--set-literal=db.password=a,b=${SECRET}`],
  ["--set", `image.tag=v2,db.password=${SECRET},replicas=3`],
  ["--set", `list={a,${SECRET},c}`],
  ["--set", `db.password=a\\,b=${SECRET}`],
  ["--set", `db.password="x,y=${SECRET}"`],
  ["--set", `db.password=${SECRET}=more`],
  ["--set", `unbalanced={x,y=${SECRET}`],
  ["--set", SECRET],
  ["--kube-token", SECRET],
  [`--kube-token=${SECRET}`],
  ["--password", SECRET],
  [`--password=${SECRET}`],
  ["--username", SECRET],
  [`--username=${SECRET}`],
  [`--registry-token=${SECRET}`],
  [`--client-secret=${SECRET}`],
  ["--repo", `https://ci:${SECRET}@charts.example.com/stable`],
  [`oci://robot:${SECRET}@registry.example.com/charts/app`],
  [`https://ci:p@${SECRET}@charts.example.com`],
];

for (const form of SECRET_FORMS) {
  Deno.test(`redactArgs() hides the secret in ${JSON.stringify(form)}`, () => {
    const args = ["upgrade", "my-rel", "./chart", ...form, "--wait"];
    const redacted = redactArgs(args);
    assert.equal(redacted.length, args.length);
    assert.ok(!redacted.join(" ").includes(SECRET), redacted.join(" "));
    assert.ok(redacted.join(" ").includes(MASK));
    assert.deepEqual(redacted.slice(0, 3), ["upgrade", "my-rel", "./chart"]);
    assert.equal(redacted.at(-1), "--wait");
    assert.ok(!redactCommandLine(args).includes(SECRET));
  });
}

Deno.test("redactArgs() keeps the keys of --set and hides each value", () => {
  assert.deepEqual(
    redactArgs(["--set", "db.password=hunter2,image.tag=v2", "--set=a\\.b/c[0]=x"]),
    ["--set", "db.password=***,image.tag=***", "--set=a\\.b/c[0]=***"],
  );
});

Deno.test("redactArgs() hides a --set value with braces or quotes whole", () => {
  assert.deepEqual(redactArgs(["--set", "list={a,b},x=1"]), ["--set", "list=***,x=***"]);
  assert.deepEqual(redactArgs(["--set-json", 'a={"p":1,"q":2}']), ["--set-json", "a=***"]);
});

Deno.test("redactArgs() reads --set-literal as one value after the first =", () => {
  assert.deepEqual(redactArgs(["--set-literal", "a=x,b=y"]), ["--set-literal", "a=***"]);
});

Deno.test("redactArgs() keeps paths, names and ordinary flags", () => {
  const args = [
    "upgrade",
    "--install",
    "my-rel",
    "oci://registry.example.com/charts/app",
    "-f",
    "values/prod.yaml",
    "--values=secrets.yaml",
    "--set-file",
    "config=./app.conf",
    "-n",
    "prod",
    "--kube-context=gke_p_europe-west1_prod",
    "--timeout",
    "5m",
    "--",
    "x",
  ];
  assert.deepEqual(redactArgs(args), args);
});

Deno.test("redactArgs() returns a copy and leaves its input alone", () => {
  const args = ["--set", "a=b"];
  const redacted = redactArgs(args);
  assert.deepEqual(args, ["--set", "a=b"]);
  assert.notEqual(redacted, args);
});

Deno.test("redactArgs() keeps a trailing --set without a value", () => {
  assert.deepEqual(redactArgs(["upgrade", "--set"]), ["upgrade", "--set"]);
});

Deno.test("redactUrls() hides the user info of URLs only", () => {
  assert.equal(
    redactUrls("pull https://user:pw@example.com/x and mailto me@example.com"),
    "pull https://***@example.com/x and mailto me@example.com",
  );
});

Deno.test("secretValues() lists secret flag values and long --set values", () => {
  assert.deepEqual(
    secretValues([
      "--set",
      "db.password=hunter2,tag=v2",
      "--kube-token=abc",
      "--password",
      "p",
      "--set-literal",
      "x=a,b=longer",
    ]),
    ["a,b=longer", "hunter2", "abc", "p"],
  );
});

Deno.test("redactText() hides each secret, the longest first", () => {
  assert.equal(
    redactText("token abcdef and abc at https://u:p@h", ["abc", "abcdef", ""]),
    "token *** and *** at https://***@h",
  );
});

Deno.test("redactCommandLine() quotes arguments a shell would split", () => {
  assert.equal(
    redactCommandLine(["upgrade", "my-rel", "--description", "it's déjà vu", "--set", "a=b c"]),
    `upgrade my-rel --description 'it'"'"'s déjà vu' --set a=***`,
  );
  assert.equal(redactCommandLine(["upgrade", ""]), "upgrade ''");
});

Deno.test("secretArgs() lists the arguments that are values of secret flags", () => {
  assert.deepEqual(
    [
      ...secretArgs([
        "--kube-token",
        "tok1",
        "--my-token",
        "tok2",
        "--password=inline",
        "--set",
        "a=b",
        "-n",
        "staging",
        "--username",
      ]),
    ],
    ["tok1", "tok2", "a=b"],
  );
});

Deno.test("redactUrls() hides the user info of URLs written in upper case and after text", () => {
  assert.equal(
    redactUrls('Get "HTTPS://u:p@h/api", x1+git://a@b c://@d 9://u@h'),
    'Get "HTTPS://***@h/api", x1+git://***@b c://@d 9://u@h',
  );
  assert.equal(redactUrls("https://u:p@ss@h/x@y"), "https://***@h/x@y");
  assert.equal(redactUrls("a://b://c@d"), "a://b://***@d");
});

for (const [shape, make] of Object.entries(ADVERSARIAL)) {
  Deno.test(`redaction is linear in the input: ${shape}`, () => {
    assertLinear("redactUrls()", make, (s) => redactUrls(s));
    assertLinear(
      "redactCommandLine()",
      make,
      (s) => redactCommandLine(["--set", s, `--set-literal=${s}`, "--description", s, s]),
    );
    assertLinear(
      "secretValues() + redactText()",
      make,
      (s) => redactText(s, secretValues(["--set", `k=${s}`, "--kube-token", s])),
    );
  });
}
