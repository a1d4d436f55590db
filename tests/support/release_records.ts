/**
 * The `release` data of helm's release records as Helm 3 and Helm 4 write it,
 * base64(gzip(release JSON)), made and read here without helm-lock's own code.
 */

/** The record data helm writes for a release JSON: gzip, then base64. */
export async function helmRecordData(json: string): Promise<string> {
  const stream = new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer()).toBase64();
}

/** The release JSON of record data written as helm writes it (rejects what is not gzip). */
export async function helmRecordJson(data: string): Promise<string> {
  const stream = new Blob([Uint8Array.fromBase64(data)]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}
