/** deno.json's `"version"`, the one source (plugin.yaml repeats it, a test checks). @module */
import denoJson from "../deno.json" with { type: "json" };

/** This program's version, such as `0.1.0`. */
export const VERSION: string = denoJson.version;
