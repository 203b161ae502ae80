/** A problem in the project or a build, named by file and line where one is known. */
export class TransformError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file ? `${file}${line ? `:${line}` : ""}: ${message}` : message);
  }
}
