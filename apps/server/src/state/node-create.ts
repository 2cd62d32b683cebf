/** Fields a caller supplies to create a node; addresses and name are allocated. */
export interface DbNodeCreate {
  userId: number;
  hostname: string;
  nodeKey: string;
  machineKey: string | null;
  tags: string[];
  ephemeral: boolean;
  authKeyId: number | null;
  expiresAt: Date | null;
  /** Waits for an admin's approval before it is in any netmap; absent = false. */
  approvalPending?: boolean;
}
