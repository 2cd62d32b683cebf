export const base64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
