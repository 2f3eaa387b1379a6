/**
 * File helpers for stores that must survive a crash at any point: whole files replaced
 * atomically (temporary file, flush, rename, flush the directory), writes that finish, and
 * removals and reads that treat a missing file as an answer rather than a failure.
 */
import { type FileHandle, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Bytes gathered per write when a whole file is written. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** Where {@link writeFileAtomically} builds a file before it takes the real name. */
export function temporaryPath(path: string): string {
  return `${path}.tmp`;
}

/**
 * Writes a whole file so that it is either all there or not at all. With `fsync`, the data and
 * the new name are on the disk when it resolves.
 */
export async function writeFileAtomically(
  path: string,
  chunks: readonly Buffer[],
  options: { readonly fsync: boolean },
): Promise<void> {
  const temp = temporaryPath(path);
  const handle = await open(temp, 'w');
  try {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for (const chunk of chunks) {
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= WRITE_BATCH_BYTES) {
        await writeAll(handle, Buffer.concat(batch));
        batch = [];
        batchBytes = 0;
      }
    }
    if (batch.length > 0) await writeAll(handle, Buffer.concat(batch));
    if (options.fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  if (options.fsync) await syncDir(dirname(path));
}

export async function writeAll(handle: FileHandle, buffer: Buffer): Promise<void> {
  // One write call in practice; the loop only matters for a short write (a nearly full disk).
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
    written += bytesWritten;
  }
}

export async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Up to `maxBytes` from the start of a file; undefined if there is no such file. */
export async function readHead(path: string, maxBytes: number): Promise<Buffer | undefined> {
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(maxBytes);
      const { bytesRead } = await handle.read(buffer, 0, maxBytes, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Removes a file; false if it was not there. */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** Makes created, renamed and removed names in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Some platforms (Windows) and file systems cannot open or sync a directory; there the
    // rename itself is as durable as it gets.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') {
      throw error;
    }
  } finally {
    await handle?.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
