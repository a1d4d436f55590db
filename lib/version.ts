/**
 * deno.json's `"version"` is the one source of truth: plugin.yaml repeats it (a test keeps
 * them equal) and release archives are named after it.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** This program's version, such as `0.1.0`. */
export const VERSION: string = denoJson.version;
