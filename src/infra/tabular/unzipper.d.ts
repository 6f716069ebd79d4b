/** The part of unzipper (no published types) the XLSX preflight uses: the central directory of an in-memory zip. */
declare module 'unzipper' {
  import type { Readable } from 'node:stream';
  export interface CentralDirectoryFile {
    path: string;
    type: 'File' | 'Directory';
    compressedSize: number;
    /** As the directory declares it: a zip bomb may lie, so the preflight counts what inflates. */
    uncompressedSize: number;
    stream(): Readable;
  }
  export interface CentralDirectory {
    files: CentralDirectoryFile[];
  }
  const unzipper: { Open: { buffer(buf: Buffer): Promise<CentralDirectory> } };
  export default unzipper;
}
