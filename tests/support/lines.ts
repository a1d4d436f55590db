/**
 * Reads a child's output line by line (std's TextLineStream is on JSR, out of reach here).
 *
 * @module
 */

/** Yields each line of `stream` (without its line break), the last one even when unterminated. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl).replace(/\r$/, "");
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered) yield buffered;
}
