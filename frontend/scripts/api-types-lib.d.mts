export function generate(doc: unknown): Promise<{ schema: string; filterKeys: string; lists: number }>;
