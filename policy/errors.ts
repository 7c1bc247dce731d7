// Errors of the policy layer: a node/CPU list, a size or a --remap value that does
// not parse or names something the machine does not have. The launcher turns them
// into usage errors that quote the option.

export class PolicyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PolicyError';
  }
}
