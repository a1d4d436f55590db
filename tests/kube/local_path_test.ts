import assert from "node:assert/strict";
import { posix, win32 } from "node:path";
import { dirname, isAbsolute, joinPath } from "../../lib/kube/local_path.ts";

const DIRS = [
  "/home/ci/.kube",
  "/home/ci/.kube/",
  "/",
  ".",
  "",
  "kube",
  "./kube/",
  "../kube",
  "a//b/./c/..",
  "/a/../../b",
];
const FILES = [
  "ca.crt",
  "./ca.crt",
  "../certs/ca.crt",
  "../../../../x",
  "certs//ca.crt",
  "a/./b/../c",
  "..",
  ".",
  "dir/",
  "",
];
const WIN_DIRS = [
  "C:\\Users\\ci\\.kube",
  "C:/Users/ci/.kube/",
  "C:\\",
  "\\\\server\\share\\kube",
  "kube",
  ".",
  "",
];
const WIN_FILES = [
  "ca.crt",
  ".\\ca.crt",
  "..\\certs\\ca.crt",
  "certs/ca.crt",
  "a\\.\\b\\..\\c",
  "..",
];

Deno.test("joinPath() joins and normalises like node:path's join (POSIX)", () => {
  for (const d of DIRS) {
    for (const f of FILES) assert.equal(joinPath(d, f, false), posix.join(d, f), `${d} + ${f}`);
  }
});

Deno.test("joinPath() joins and normalises like node:path's join (Windows)", () => {
  for (const d of WIN_DIRS) {
    for (const f of WIN_FILES) assert.equal(joinPath(d, f, true), win32.join(d, f), `${d} + ${f}`);
  }
});

Deno.test("dirname() and isAbsolute() agree with node:path (POSIX and Windows)", () => {
  for (const p of [...DIRS, ...FILES, "/a/b/c", "/a/b/c/", "/a", "a", "a/b", "//a//b//"]) {
    assert.equal(dirname(p, false), posix.dirname(p), p);
    assert.equal(isAbsolute(p, false), posix.isAbsolute(p), p);
  }
  for (const p of [...WIN_DIRS, ...WIN_FILES, "C:\\a\\b", "C:a", "/a/b", "\\a", "C:\\a\\b\\"]) {
    assert.equal(dirname(p, true), win32.dirname(p), p);
    assert.equal(isAbsolute(p, true), win32.isAbsolute(p), p);
  }
});
