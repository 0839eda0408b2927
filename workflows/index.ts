// The worker's workflows (workersPath): every function exported here is a workflow type.
import type { FraudCaseWorkflow } from '../contracts/case.ts';
import type { ExportWindowWorkflow } from '../contracts/export.ts';
import { exportWindowWorkflow } from './export.ts';
import { fraudCaseWorkflow } from './fraud-case.ts';

export { exportWindowWorkflow, fraudCaseWorkflow };

// The implementations have the signatures clients start them by (contracts/).
const _signatures = { fraudCaseWorkflow, exportWindowWorkflow } satisfies { fraudCaseWorkflow: FraudCaseWorkflow; exportWindowWorkflow: ExportWindowWorkflow };
void _signatures;
