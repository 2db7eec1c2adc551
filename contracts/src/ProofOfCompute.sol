// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles, Guarded} from "./Roles.sol";
import {ArthaMerkle} from "./ArthaMerkle.sol";
import {AIJobManager} from "./AIJobManager.sol";
import {DealMarket} from "./DealMarket.sol";
import {NodeCertRegistry} from "./NodeCertRegistry.sol";

/// @title ProofOfCompute
/// @notice Verifiable compute: commitments of work, audit randomness,
/// bonded challenges judged by a jury of staked verifiers, and settlement
/// per verified step.
///
/// A job commits ONE root (over its window roots), whatever its step count,
/// so a job's gas does not grow with its length. The audit seed is drawn
/// from the hash of the block after the commitment, which the node cannot
/// know when it commits; `auditWindows` turns it into the windows auditors
/// replay. Anyone may challenge a committed step inside the challenge period
/// by proving it is under the root and posting a bond with a replayed record
/// that differs. A jury of `jurySize` staked jurors, drawn from the pool by
/// the hash of the block after the challenge, replays the window from its
/// start checkpoint off chain and votes by commit and reveal: FRAUD, VALID or
/// UNAVAILABLE. After the period, with no open challenge, `finalize` pays
/// `steps × pricePerStep` to the node and refunds the rest.
///
/// Trust assumption. No account decides a dispute: this contract has no
/// arbiter role, and its ADMIN role gates no function here (it only manages
/// roles, of which this contract checks none). The admin of
/// NodeCertRegistry cannot restore a slashed node either: a slash is for
/// good. Who can do what:
/// - the assigned node's operator commits (once);
/// - anyone seals the audit seed, challenges (with a bond, inside the
///   period), draws a jury, resolves and finalizes when the rules allow;
/// - anyone with `jurorStake` joins the juror pool; only drawn jurors vote;
/// - the verdict is the majority of the revealed votes of the drawn jury
///   (ties VALID); jurors against the verdict or silent lose half a juror
///   stake, shared by those with the verdict.
/// To win a dispute wrongly an attacker needs a majority of one drawn jury:
/// control of roughly that fraction of the staked pool (each seat is drawn
/// uniformly from the pool, so with a fraction `p` of the pool's seats the
/// chance to hold a majority of a jury of `n` is the binomial tail), or a
/// block producer who grinds the hash of the draw block (it can withhold a
/// block whose hash gives a bad draw, at the cost of that block's reward).
/// Draws and seals must happen within 256 blocks: after that the hash of
/// the block before the call is used, which the caller can time (see
/// `auditSeed`), so honest parties (the engine, challengers) seal and draw
/// as soon as they can.
///
/// Data availability: "no data, no pay". A node must keep its manifest,
/// step log, checkpoints and inputs fetchable until its job is final. A
/// jury that cannot fetch them votes UNAVAILABLE: the submitter is refunded,
/// the node is not paid (nor slashed) and loses 10 reputation, the job ends
/// Voided.
///
/// A challenge nobody can draw a jury for (the pool is too small) does not
/// block the job forever: `votePeriod × 4` seconds after it was opened,
/// anyone may `resolve` it, which dismisses it (bond back, status restored).
contract ProofOfCompute is Roles, Guarded {
    /// @notice Vote: the committed record is not what replaying the window
    /// from its start checkpoint gives.
    uint8 public constant FRAUD = 1;
    /// @notice Vote: the committed record is what the replay gives.
    uint8 public constant VALID = 2;
    /// @notice Vote: the juror could not fetch the committed data (manifest,
    /// step log, checkpoint or inputs).
    uint8 public constant UNAVAILABLE = 3;

    /// @notice A job's commitment (four storage slots; the seed is written by
    /// `seal` or `finalize`). The final weights are in the `Committed` event.
    struct Commitment {
        bytes32 jobRoot;
        bytes32 manifestCid;
        bytes32 seed; // zero until sealed
        uint64 steps;
        uint64 commitBlock;
        uint40 committedAt;
        uint32 windows;
        uint32 window;
        uint16 openChallenges;
    }

    /// @notice A challenge as `getChallenge` reports it. `verdict` is 0
    /// (dismissed or not yet resolved), FRAUD, VALID or UNAVAILABLE;
    /// `drawnAt` is the jury's draw time (0: no jury yet).
    struct Challenge {
        bytes32 jobId;
        address challenger;
        uint96 bond;
        uint64 step;
        uint64 challengeBlock;
        uint40 drawnAt;
        uint8 verdict;
        bool resolved;
    }

    /// @notice What a challenger claims: where the disputed step sits under
    /// the job root, the committed record, and the replayed record.
    struct StepClaim {
        uint256 windowIndex;
        bytes32 windowRoot;
        bytes32[] windowProof;
        uint256 stepIndex;
        bytes committedRecord;
        bytes32[] stepProof;
        bytes replayedRecord;
    }

    /// @dev A challenge in storage (three slots): `Challenge` plus the time it
    /// was opened (for the no-jury timeout).
    struct Dispute {
        bytes32 jobId;
        address challenger;
        uint96 bond;
        uint64 step;
        uint64 challengeBlock;
        uint40 openedAt;
        uint40 drawnAt;
        uint8 verdict;
        bool resolved;
    }

    /// @dev A pool member. `slot` is its position in `_pool` plus one (0: not
    /// drawable: its stake fell below `jurorStake`); `duty` counts the
    /// unresolved challenges it was drawn for.
    struct Juror {
        uint128 stake;
        uint32 slot;
        uint32 duty;
        bool joined;
    }

    /// @dev A drawn juror's ballot on one challenge.
    struct Ballot {
        bytes32 commitment;
        bool drawn;
        uint8 vote; // 0 until revealed
    }

    /// @dev Counts of a challenge's ballots (one slot).
    struct Tally {
        uint32 commits;
        uint32 reveals;
        uint32 fraud;
        uint32 valid;
        uint32 unavailable;
    }

    AIJobManager public immutable manager;
    NodeCertRegistry public immutable nodes;
    DealMarket public immutable market;
    /// @notice Seconds after a commitment during which it can be challenged.
    uint64 public immutable challengePeriod;
    /// @notice Least bond of a challenge.
    uint256 public immutable minBond;
    /// @notice Stake taken from a node whose commitment a jury found fraudulent.
    uint256 public immutable slashAmount;
    /// @notice Least stake of a juror; a juror against the verdict, or
    /// silent, loses half of it.
    uint256 public immutable jurorStake;
    /// @notice Jurors drawn per challenge (odd, at least 1).
    uint32 public immutable jurySize;
    /// @notice Seconds of each voting phase: commits until `drawnAt +
    /// votePeriod`, reveals until `drawnAt + 2 × votePeriod`.
    uint64 public immutable votePeriod;

    mapping(bytes32 jobId => Commitment) private _commitments;
    mapping(uint256 challengeId => Dispute) private _disputes;
    uint256 public challengeCount;

    mapping(address juror => Juror) private _jurors;
    address[] private _pool;
    mapping(uint256 challengeId => address[]) private _juries;
    mapping(uint256 challengeId => mapping(address juror => Ballot)) private _ballots;
    mapping(uint256 challengeId => Tally) private _tallies;

    /// @notice A constructor parameter is out of range: `jurySize` even or
    /// zero, or a zero `votePeriod` or `jurorStake`.
    error InvalidParams();
    /// @notice Only the assigned node's operator may commit.
    error NotAssignedNode(bytes32 jobId, address caller);
    /// @notice The job is not in a status that allows this.
    error WrongStatus(bytes32 jobId, AIJobManager.Status status);
    /// @notice The job already has its (one) commitment.
    error AlreadyCommitted(bytes32 jobId);
    /// @notice Zero job root or manifest CID, zero window size or window
    /// count, or a window count that does not match ceil(steps / window).
    error MalformedRoot();
    /// @notice The node committed more steps than the job's spec implies.
    error StepsOverMax(uint64 steps, uint64 maxSteps);
    /// @notice The job has no commitment.
    error NotCommitted(bytes32 jobId);
    /// @notice The audit seed exists from block `readyAtBlock`.
    error SeedNotReady(uint256 readyAtBlock);
    /// @notice The challenge period ended at `closedAt`.
    error ChallengeWindowClosed(uint256 closedAt);
    /// @notice The challenge period runs until `endsAt`.
    error ChallengePeriodActive(uint256 endsAt);
    /// @notice The bond sent is below `minBond`.
    error BondTooLow(uint256 sent, uint256 required);
    /// @notice The bond sent is above 2^96 wei.
    error BondTooHigh(uint256 sent);
    /// @notice A Merkle path does not lead to the committed root, or the
    /// window index is out of range.
    error InvalidProof();
    /// @notice The replayed record is for another step than the committed one.
    error StepMismatch(uint64 committed, uint64 replayed);
    /// @notice The replayed record equals the committed one.
    error NoDifference();
    /// @notice No challenge `challengeId`.
    error UnknownChallenge(uint256 challengeId);
    /// @notice The challenge was already resolved.
    error AlreadyResolved(uint256 challengeId);
    /// @notice The job has a challenge awaiting resolution.
    error OpenChallenge(bytes32 jobId);
    /// @notice The job was already finalized.
    error AlreadyFinalized(bytes32 jobId);
    /// @notice A juror's stake below `jurorStake`.
    error JurorStakeTooLow(uint256 sent, uint256 required);
    /// @notice A juror's stake above 2^128 wei.
    error JurorStakeTooHigh(uint256 sent);
    /// @notice `juror` is already in the pool.
    error AlreadyJuror(address juror);
    /// @notice `account` is not a juror.
    error NotJuror(address account);
    /// @notice `juror` sits on a jury whose challenge is unresolved.
    error OnDuty(address juror);
    /// @notice The jury can be drawn from block `readyAtBlock`.
    error JuryNotReady(uint256 readyAtBlock);
    /// @notice The challenge's jury was already drawn.
    error JuryAlreadyDrawn(uint256 challengeId);
    /// @notice Only `available` jurors (the challenger and the node's operator
    /// excluded) for a jury of `needed`.
    error NotEnoughJurors(uint256 available, uint256 needed);
    /// @notice The challenge has no jury yet (and its no-jury timeout has not
    /// passed).
    error JuryNotDrawn(uint256 challengeId);
    /// @notice `caller` was not drawn for challenge `challengeId`.
    error NotOnJury(uint256 challengeId, address caller);
    /// @notice `juror` already committed (or revealed) this vote.
    error AlreadyVoted(uint256 challengeId, address juror);
    /// @notice A zero vote commitment.
    error EmptyCommitment();
    /// @notice The voting phase closed at `deadline`.
    error VotingClosed(uint256 deadline);
    /// @notice The previous voting phase runs until `deadline`.
    error VotingOpen(uint256 deadline);
    /// @notice The revealed vote and salt do not hash to the commitment.
    error BadReveal();
    /// @notice Votes are FRAUD (1), VALID (2) or UNAVAILABLE (3).
    error InvalidVote(uint8 vote);

    /// @notice The assigned node committed a job's results: `windows` window
    /// roots of `window` steps under `jobRoot`, `steps` steps in all, the
    /// final weights' and proof manifest's CIDs.
    event Committed(
        bytes32 indexed jobId,
        bytes32 indexed nodeId,
        bytes32 jobRoot,
        uint32 window,
        uint32 windows,
        uint64 steps,
        bytes32 finalWeights,
        bytes32 manifestCid
    );
    /// @notice A job's audit seed was stored.
    event SeedSealed(bytes32 indexed jobId, bytes32 seed);
    /// @notice A committed step was challenged: the committed record (proven
    /// under the job root at `windowIndex`/`stepIndex`) and the challenger's
    /// replayed record for the same step, which differs.
    event Challenged(
        uint256 indexed challengeId,
        bytes32 indexed jobId,
        address indexed challenger,
        uint64 step,
        uint256 bond,
        uint256 windowIndex,
        uint256 stepIndex,
        bytes committedRecord,
        bytes replayedRecord
    );
    /// @notice `juror` joined the pool with `stake` wei.
    event JurorJoined(address indexed juror, uint256 stake);
    /// @notice `juror` left the pool and got `stake` wei back.
    event JurorLeft(address indexed juror, uint256 stake);
    /// @notice A challenge's jury was drawn; commits until `commitDeadline`,
    /// reveals until `revealDeadline` (timestamps).
    event JuryDrawn(uint256 indexed challengeId, address[] jurors, uint256 commitDeadline, uint256 revealDeadline);
    /// @notice A drawn juror committed a hidden vote.
    event VoteCommitted(uint256 indexed challengeId, address indexed juror);
    /// @notice A drawn juror revealed its vote.
    event VoteRevealed(uint256 indexed challengeId, address indexed juror, uint8 vote);
    /// @notice A challenge was resolved with `verdict` (0: dismissed). FRAUD:
    /// `slashed` wei of stake and the bond went to the challenger, the escrow
    /// to the submitter. VALID: the bond went to the node's operator.
    /// UNAVAILABLE: the escrow went to the submitter, the bond back to the
    /// challenger. `bondTo` also received the penalties of the silent and
    /// losing jurors when no juror voted with the verdict.
    event ChallengeResolved(
        uint256 indexed challengeId, bytes32 indexed jobId, uint8 verdict, uint256 slashed, address bondTo, uint256 bond
    );
    /// @notice A drawn juror who did not reveal, or voted against the verdict,
    /// lost `amount` of its stake.
    event JurorPenalized(uint256 indexed challengeId, address indexed juror, uint256 amount);
    /// @notice A job was paid: `payout` = `steps` × pricePerStep to `payee`
    /// (the node's operator); the rest of the escrow went back to the submitter.
    event Finalized(bytes32 indexed jobId, bytes32 indexed nodeId, address payee, uint256 payout, uint64 steps);

    /// @param jurorStake_ least stake of a juror (non-zero).
    /// @param jurySize_ jurors per challenge (odd, at least 1).
    /// @param votePeriod_ seconds of each voting phase (non-zero).
    constructor(
        address admin,
        AIJobManager manager_,
        NodeCertRegistry nodes_,
        DealMarket market_,
        uint64 challengePeriod_,
        uint256 minBond_,
        uint256 slashAmount_,
        uint256 jurorStake_,
        uint32 jurySize_,
        uint64 votePeriod_
    ) Roles(admin) {
        if (jurySize_ == 0 || jurySize_ % 2 == 0 || votePeriod_ == 0 || jurorStake_ == 0) {
            revert InvalidParams();
        }
        manager = manager_;
        nodes = nodes_;
        market = market_;
        challengePeriod = challengePeriod_;
        minBond = minBond_;
        slashAmount = slashAmount_;
        jurorStake = jurorStake_;
        jurySize = jurySize_;
        votePeriod = votePeriod_;
    }

    // ------------------------------------------------------------ commit

    /// @notice Commits a job's results: the job's completion on chain. Only
    /// the assigned node's operator, once per job, whatever the step count.
    /// @param jobRoot Merkle root over the window roots (ArthaMerkle tree).
    /// @param window steps per window (the last window may be shorter).
    /// @param windows number of windows = ceil(steps / window).
    /// @param steps number of training steps (step leaves), at most the
    /// job's `maxSteps`; the node is paid `steps × pricePerStep`.
    /// @param finalWeights BLAKE3 CID of the final weights (event only).
    /// @param manifestCid BLAKE3 CID of the proof manifest (non-zero): where
    /// auditors and jurors find the step log, checkpoints and inputs.
    function commit(
        bytes32 jobId,
        bytes32 jobRoot,
        uint32 window,
        uint32 windows,
        uint64 steps,
        bytes32 finalWeights,
        bytes32 manifestCid
    ) external {
        AIJobManager.Job memory j = manager.getJob(jobId);
        if (_commitments[jobId].jobRoot != bytes32(0)) revert AlreadyCommitted(jobId);
        if (j.status != AIJobManager.Status.Assigned) revert WrongStatus(jobId, j.status);
        if (nodes.operatorOf(j.nodeId) != msg.sender) revert NotAssignedNode(jobId, msg.sender);
        if (jobRoot == bytes32(0) || manifestCid == bytes32(0) || window == 0 || windows == 0) revert MalformedRoot();
        if (uint256(windows) != (uint256(steps) + window - 1) / window) revert MalformedRoot();
        if (steps > j.maxSteps) revert StepsOverMax(steps, j.maxSteps);
        _commitments[jobId] = Commitment(
            jobRoot, manifestCid, bytes32(0), steps, uint64(block.number), uint40(block.timestamp), windows, window, 0
        );
        manager.setStatus(jobId, AIJobManager.Status.Committed);
        emit Committed(jobId, j.nodeId, jobRoot, window, windows, steps, finalWeights, manifestCid);
    }

    // ------------------------------------------------------ audit seed

    /// @notice The job's audit seed: the sealed value once `seal` (or
    /// `finalize`) stored it, otherwise the value `seal` would store now.
    ///
    /// seed = keccak256(abi.encode(blockhash(commitBlock + 1), jobId)),
    /// available once `block.number > commitBlock + 1` (`SeedNotReady(commitBlock
    /// + 2)` before). The node cannot know that hash when it commits. The EVM
    /// only keeps the last 256 block hashes: when `commitBlock + 1` is older,
    /// `blockhash(block.number - 1)` is used instead. That hash is still
    /// unknown at commit time, but it changes every block until the seed is
    /// sealed, and whoever seals can time the call: seal within 256 blocks.
    function auditSeed(bytes32 jobId) public view returns (bytes32) {
        Commitment storage c = _committed(jobId);
        if (c.seed != bytes32(0)) return c.seed;
        return _freshSeed(c, jobId);
    }

    /// @notice Stores the job's audit seed (anyone; once). Idempotent: later
    /// calls return the stored seed.
    function seal(bytes32 jobId) public returns (bytes32 seed) {
        Commitment storage c = _committed(jobId);
        seed = c.seed;
        if (seed != bytes32(0)) return seed;
        seed = _freshSeed(c, jobId);
        c.seed = seed;
        emit SeedSealed(jobId, seed);
    }

    /// @notice `min(count, windows)` distinct window indices of the job, drawn
    /// from its audit seed (`auditSeed`): the windows auditors replay. See
    /// `drawWindows` for the rule and an example.
    function auditWindows(bytes32 jobId, uint256 count) external view returns (uint256[] memory) {
        bytes32 seed = auditSeed(jobId);
        return drawWindows(seed, jobId, _commitments[jobId].windows, count);
    }

    /// @notice The window draw of `auditWindows` for any seed: for i = 0, 1,
    /// 2, …, `idx = uint256(keccak256(abi.encode(seed, jobId, i))) % windows`,
    /// skipping indices already drawn, until `min(count, windows)` are found;
    /// returned in draw order.
    ///
    /// Example: seed = bytes32(uint256(1)), jobId = bytes32(uint256(2)),
    /// windows = 10, count = 5 gives [2, 7, 8, 4, 0]: i = 0…6 draw 2, 7, 8, 4,
    /// 4, 2, 0 (i = 4 and 5 repeat and are skipped). The Rust engine
    /// implements the same function (test `testDrawWindowsExample` pins it).
    function drawWindows(bytes32 seed, bytes32 jobId, uint32 windows, uint256 count)
        public
        pure
        returns (uint256[] memory picked)
    {
        uint256 n = count < windows ? count : windows;
        picked = new uint256[](n);
        uint256 found = 0;
        for (uint256 i = 0; found < n; i++) {
            uint256 idx = uint256(keccak256(abi.encode(seed, jobId, i))) % windows;
            bool seen = false;
            for (uint256 k = 0; k < found; k++) {
                if (picked[k] == idx) {
                    seen = true;
                    break;
                }
            }
            if (!seen) picked[found++] = idx;
        }
    }

    // ------------------------------------------------------- challenges

    /// @notice Challenges a committed step (anyone, with a bond of at least
    /// `minBond`, before `committedAt + challengePeriod`): proves
    /// `claim.committedRecord` is under the job root (window proof, then step
    /// proof) and shows a replayed record of the same step that differs.
    /// From the block after next, anyone may `drawJury`.
    /// @return challengeId sequential from 1.
    function challenge(bytes32 jobId, StepClaim calldata claim) external payable returns (uint256 challengeId) {
        (Commitment storage c, AIJobManager.Status status) = _challengeable(jobId);
        uint64 step = _checkClaim(c, claim);
        challengeId = _openDispute(jobId, step, status);
        emit Challenged(
            challengeId,
            jobId,
            msg.sender,
            step,
            msg.value,
            claim.windowIndex,
            claim.stepIndex,
            claim.committedRecord,
            claim.replayedRecord
        );
    }

    /// @notice Challenges a commitment's data rather than one step (anyone,
    /// with a bond of at least `minBond`, inside the challenge period): the
    /// manifest, step log or a checkpoint the commitment names is provably
    /// not what it claims — a log that does not rebuild to the committed
    /// root, a checkpoint that holds another step than the one it is listed
    /// at. No step is disputed (step 0 in the challenge and its event); the
    /// jury judges it like a step challenge, each juror running the whole
    /// audit of the job, and resolves it the same way.
    /// @return challengeId sequential from 1.
    function challengeData(bytes32 jobId) external payable returns (uint256 challengeId) {
        (, AIJobManager.Status status) = _challengeable(jobId);
        challengeId = _openDispute(jobId, 0, status);
        emit Challenged(challengeId, jobId, msg.sender, 0, msg.value, 0, 0, "", "");
    }

    /// @notice Checks that `jobId` can be challenged now with `msg.value`.
    function _challengeable(bytes32 jobId) private view returns (Commitment storage c, AIJobManager.Status status) {
        c = _commitments[jobId];
        if (c.jobRoot == bytes32(0)) revert NotCommitted(jobId);
        uint256 closes = uint256(c.committedAt) + challengePeriod;
        if (block.timestamp >= closes) revert ChallengeWindowClosed(closes);
        status = manager.getJob(jobId).status;
        if (status != AIJobManager.Status.Committed && status != AIJobManager.Status.Challenged) {
            revert WrongStatus(jobId, status);
        }
        if (msg.value < minBond) revert BondTooLow(msg.value, minBond);
        if (msg.value > type(uint96).max) revert BondTooHigh(msg.value);
    }

    /// @notice Records a dispute over `step` (0: the data) of `jobId`.
    function _openDispute(bytes32 jobId, uint64 step, AIJobManager.Status status)
        private
        returns (uint256 challengeId)
    {
        challengeId = ++challengeCount;
        _disputes[challengeId] = Dispute(
            jobId, msg.sender, uint96(msg.value), step, uint64(block.number), uint40(block.timestamp), 0, 0, false
        );
        _commitments[jobId].openChallenges += 1;
        if (status != AIJobManager.Status.Challenged) manager.setStatus(jobId, AIJobManager.Status.Challenged);
    }

    /// @notice Checks a claim against a commitment; returns the step number.
    function _checkClaim(Commitment storage c, StepClaim calldata claim) private view returns (uint64 step) {
        if (claim.windowIndex >= c.windows) revert InvalidProof();
        if (!ArthaMerkle.verify(c.jobRoot, claim.windowRoot, claim.windowIndex, c.windows, claim.windowProof)) {
            revert InvalidProof();
        }
        uint256 first = claim.windowIndex * c.window;
        uint256 leaves = c.steps - first < c.window ? c.steps - first : c.window;
        bytes32 leaf = ArthaMerkle.leafHash(claim.committedRecord);
        if (!ArthaMerkle.verify(claim.windowRoot, leaf, claim.stepIndex, leaves, claim.stepProof)) {
            revert InvalidProof();
        }
        step = ArthaMerkle.stepNumber(claim.committedRecord);
        uint64 replayedStep = ArthaMerkle.stepNumber(claim.replayedRecord);
        if (step != replayedStep) revert StepMismatch(step, replayedStep);
        if (keccak256(claim.committedRecord) == keccak256(claim.replayedRecord)) revert NoDifference();
    }

    // ------------------------------------------------------------- pool

    /// @notice Joins the juror pool, staking `msg.value` (at least
    /// `jurorStake`); once per account.
    function joinJury() external payable {
        Juror storage jr = _jurors[msg.sender];
        if (jr.joined) revert AlreadyJuror(msg.sender);
        if (msg.value < jurorStake) revert JurorStakeTooLow(msg.value, jurorStake);
        if (msg.value > type(uint128).max) revert JurorStakeTooHigh(msg.value);
        jr.joined = true;
        jr.stake = uint128(msg.value);
        _pool.push(msg.sender);
        jr.slot = uint32(_pool.length);
        emit JurorJoined(msg.sender, msg.value);
    }

    /// @notice Leaves the pool and takes the stake back (what penalties left
    /// of it, plus rewards). Refused while drawn on an unresolved challenge.
    function leaveJury() external nonReentrant {
        Juror storage jr = _jurors[msg.sender];
        if (!jr.joined) revert NotJuror(msg.sender);
        if (jr.duty != 0) revert OnDuty(msg.sender);
        uint256 stake = jr.stake;
        if (jr.slot != 0) _removeFromPool(jr);
        delete _jurors[msg.sender];
        emit JurorLeft(msg.sender, stake);
        _pay(msg.sender, stake);
    }

    /// @notice A juror's stake (zero for a non-juror).
    function jurorStakeOf(address juror) external view returns (uint256) {
        return _jurors[juror].stake;
    }

    /// @notice Number of drawable jurors (in the pool with at least `jurorStake`).
    function jurorCount() external view returns (uint256) {
        return _pool.length;
    }

    // ------------------------------------------------------------- jury

    /// @notice Draws the challenge's jury (anyone, once, from block
    /// `challengeBlock + 2`). seed = keccak256(abi.encode(blockhash(
    /// challengeBlock + 1), challengeId)) (older than 256 blocks:
    /// blockhash(block.number - 1), as for `auditSeed`). For i = 0, 1, …:
    /// `pool[uint256(keccak256(abi.encode(seed, i))) % pool.length]`,
    /// skipping the challenger, the job's node operator and jurors already
    /// drawn, until `jurySize` are drawn. Commits are open for `votePeriod`,
    /// then reveals for `votePeriod`. Drawn jurors cannot leave the pool
    /// until the challenge is resolved.
    function drawJury(uint256 challengeId) external returns (address[] memory jurors) {
        Dispute storage d = _open(challengeId);
        if (d.drawnAt != 0) revert JuryAlreadyDrawn(challengeId);
        uint256 ready = uint256(d.challengeBlock) + 2;
        if (block.number < ready) revert JuryNotReady(ready);
        bytes32 seed = keccak256(abi.encode(_recentHash(uint256(d.challengeBlock) + 1), challengeId));
        address ch = d.challenger;
        address op = nodes.operatorOf(manager.getJob(d.jobId).nodeId);
        uint256 size = _pool.length;
        uint256 available = size;
        if (_jurors[ch].slot != 0) available -= 1;
        if (op != ch && _jurors[op].slot != 0) available -= 1;
        if (available < jurySize) revert NotEnoughJurors(available, jurySize);
        jurors = new address[](jurySize);
        mapping(address => Ballot) storage ballots = _ballots[challengeId];
        uint256 found = 0;
        for (uint256 i = 0; found < jurors.length; i++) {
            address a = _pool[uint256(keccak256(abi.encode(seed, i))) % size];
            if (a == ch || a == op || ballots[a].drawn) continue;
            ballots[a].drawn = true;
            _jurors[a].duty += 1;
            jurors[found++] = a;
        }
        _juries[challengeId] = jurors;
        d.drawnAt = uint40(block.timestamp);
        emit JuryDrawn(challengeId, jurors, block.timestamp + votePeriod, block.timestamp + 2 * uint256(votePeriod));
    }

    /// @notice Commits a drawn juror's hidden vote, before the commit deadline:
    /// `commitment = keccak256(abi.encode(challengeId, msg.sender, vote, salt))`
    /// (`voteCommitment`), with `vote` FRAUD, VALID or UNAVAILABLE.
    function commitVote(uint256 challengeId, bytes32 commitment) external {
        Dispute storage d = _open(challengeId);
        Ballot storage b = _ballots[challengeId][msg.sender];
        if (!b.drawn) revert NotOnJury(challengeId, msg.sender);
        if (b.commitment != bytes32(0)) revert AlreadyVoted(challengeId, msg.sender);
        uint256 deadline = uint256(d.drawnAt) + votePeriod;
        if (block.timestamp >= deadline) revert VotingClosed(deadline);
        if (commitment == bytes32(0)) revert EmptyCommitment();
        b.commitment = commitment;
        _tallies[challengeId].commits += 1;
        emit VoteCommitted(challengeId, msg.sender);
    }

    /// @notice Reveals a committed vote: after the commit deadline, or as soon
    /// as every juror has committed; before the reveal deadline.
    function revealVote(uint256 challengeId, uint8 vote, bytes32 salt) external {
        Dispute storage d = _open(challengeId);
        Ballot storage b = _ballots[challengeId][msg.sender];
        if (!b.drawn) revert NotOnJury(challengeId, msg.sender);
        if (vote == 0 || vote > UNAVAILABLE) revert InvalidVote(vote);
        if (b.vote != 0) revert AlreadyVoted(challengeId, msg.sender);
        Tally storage t = _tallies[challengeId];
        uint256 commitEnd = uint256(d.drawnAt) + votePeriod;
        if (block.timestamp < commitEnd && t.commits < jurySize) revert VotingOpen(commitEnd);
        uint256 revealEnd = commitEnd + votePeriod;
        if (block.timestamp >= revealEnd) revert VotingClosed(revealEnd);
        if (keccak256(abi.encode(challengeId, msg.sender, vote, salt)) != b.commitment) revert BadReveal();
        b.vote = vote;
        t.reveals += 1;
        if (vote == FRAUD) t.fraud += 1;
        else if (vote == VALID) t.valid += 1;
        else t.unavailable += 1;
        emit VoteRevealed(challengeId, msg.sender, vote);
    }

    /// @notice Resolves a challenge (anyone): after the reveal deadline, or as
    /// soon as every juror has revealed. The verdict is the vote revealed
    /// most; a tie is VALID; with no reveal at all the challenge is dismissed
    /// (verdict 0: bond back to the challenger). Every drawn juror who did not
    /// reveal, or revealed against the verdict, loses `min(jurorStake / 2,
    /// stake)`; the penalties are added equally to the stakes of the jurors
    /// who voted with the verdict (remainder to the first drawn of them), or,
    /// with none, paid to the bond's recipient. Then:
    /// - FRAUD: `min(slashAmount, stake)` of the node's stake goes to the
    ///   challenger, the node is decertified and marked slashed for good,
    ///   loses 10 reputation, the submitter is refunded in full, the bond is
    ///   returned and the job ends Slashed. On a job already Slashed only the
    ///   bond is returned; on a Voided job (escrow already refunded) the node
    ///   is still slashed.
    /// - VALID: the bond goes to the node's operator; the job returns to
    ///   Committed once no challenge is open.
    /// - UNAVAILABLE ("no data, no pay"): the submitter is refunded in full,
    ///   the node loses 10 reputation (no slash), the bond is returned and the
    ///   job ends Voided (unless already Slashed or Voided).
    /// A challenge with no jury `votePeriod × 4` seconds after it was opened
    /// is dismissed by this call (verdict 0, bond back, status restored), so
    /// a pool too small to draw from never blocks a job.
    function resolve(uint256 challengeId) external nonReentrant {
        Dispute storage d = _open(challengeId);
        uint8 verdict = 0;
        uint256 unshared = 0;
        if (d.drawnAt == 0) {
            uint256 dismissAt = uint256(d.openedAt) + 4 * uint256(votePeriod);
            if (block.timestamp < dismissAt) revert JuryNotDrawn(challengeId);
        } else {
            Tally memory t = _tallies[challengeId];
            uint256 revealEnd = uint256(d.drawnAt) + 2 * uint256(votePeriod);
            if (block.timestamp < revealEnd && t.reveals < jurySize) revert VotingOpen(revealEnd);
            verdict = _verdict(t);
        }
        d.resolved = true;
        d.verdict = verdict;
        if (d.drawnAt != 0) unshared = _settleJury(challengeId, verdict);
        _apply(challengeId, d, verdict, unshared);
    }

    /// @dev The vote revealed most; ties VALID; no reveal: 0 (dismissed).
    function _verdict(Tally memory t) private pure returns (uint8) {
        if (t.reveals == 0) return 0;
        if (t.fraud > t.valid && t.fraud > t.unavailable) return FRAUD;
        if (t.unavailable > t.valid && t.unavailable > t.fraud) return UNAVAILABLE;
        return VALID;
    }

    /// @dev Penalizes the silent and losing jurors, shares the penalties among
    /// the winning ones (added to their stakes), releases everyone's duty.
    /// Returns the penalties nobody won (no juror voted with the verdict).
    function _settleJury(uint256 challengeId, uint8 verdict) private returns (uint256 pot) {
        address[] storage jury = _juries[challengeId];
        mapping(address => Ballot) storage ballots = _ballots[challengeId];
        uint256 n = jury.length;
        uint256 winners = 0;
        uint256 penalty = jurorStake / 2;
        for (uint256 i = 0; i < n; i++) {
            address a = jury[i];
            Juror storage jr = _jurors[a];
            jr.duty -= 1;
            if (verdict != 0 && ballots[a].vote == verdict) {
                winners += 1;
                continue;
            }
            uint256 p = jr.stake < penalty ? jr.stake : penalty;
            jr.stake -= uint128(p);
            pot += p;
            _syncPool(jr, a);
            emit JurorPenalized(challengeId, a, p);
        }
        if (winners == 0) return pot; // nobody to share with: goes with the bond
        if (pot == 0) return 0;
        uint256 share = pot / winners;
        uint256 rest = pot - share * winners;
        for (uint256 i = 0; i < n; i++) {
            address a = jury[i];
            if (ballots[a].vote != verdict) continue;
            Juror storage jr = _jurors[a];
            jr.stake += uint128(share + rest);
            rest = 0;
            _syncPool(jr, a);
        }
        return 0;
    }

    /// @dev The verdict's effect on the job, the node and the bond (external
    /// calls and the payment last). `unshared` penalties go with the bond.
    function _apply(uint256 challengeId, Dispute storage d, uint8 verdict, uint256 unshared) private {
        bytes32 jobId = d.jobId;
        Commitment storage c = _commitments[jobId];
        c.openChallenges -= 1;
        AIJobManager.Job memory j = manager.getJob(jobId);
        AIJobManager.Status s = j.status;
        uint256 slashed = 0;
        address bondTo = d.challenger;
        if (verdict == FRAUD) {
            if (s != AIJobManager.Status.Slashed) {
                uint256 stake = nodes.getNode(j.nodeId).stake;
                slashed = stake < slashAmount ? stake : slashAmount;
                manager.setStatus(jobId, AIJobManager.Status.Slashed);
                nodes.adjustReputation(j.nodeId, -10);
                if (s != AIJobManager.Status.Voided) market.refund(jobId);
                // Also decertifies the node and marks it slashed, even when no
                // stake is left to take.
                nodes.slash(j.nodeId, slashed, d.challenger);
            }
        } else if (verdict == UNAVAILABLE) {
            if (s != AIJobManager.Status.Slashed && s != AIJobManager.Status.Voided) {
                manager.setStatus(jobId, AIJobManager.Status.Voided);
                nodes.adjustReputation(j.nodeId, -10);
                market.refund(jobId);
            }
        } else {
            if (verdict == VALID) bondTo = nodes.operatorOf(j.nodeId);
            if (c.openChallenges == 0 && s == AIJobManager.Status.Challenged) {
                manager.setStatus(jobId, AIJobManager.Status.Committed);
            }
        }
        emit ChallengeResolved(challengeId, jobId, verdict, slashed, bondTo, d.bond);
        _pay(bondTo, uint256(d.bond) + unshared);
    }

    // ------------------------------------------------------- settlement

    /// @notice Pays out a job whose challenge period passed with no open or
    /// upheld challenge (anyone may call): `steps × pricePerStep` (fixed at
    /// submission; never more than the escrow, which covers `maxSteps ×
    /// pricePerStep`) to the node's operator, the rest of the escrow back to
    /// the submitter; the node gains 1 reputation. Seals the audit seed if
    /// nobody did (`SeedNotReady` in the block right after the commitment).
    function finalize(bytes32 jobId) external {
        Commitment storage c = _commitments[jobId];
        if (c.jobRoot == bytes32(0)) revert NotCommitted(jobId);
        AIJobManager.Job memory j = manager.getJob(jobId);
        if (j.status == AIJobManager.Status.Finalized) revert AlreadyFinalized(jobId);
        if (j.status == AIJobManager.Status.Challenged) revert OpenChallenge(jobId);
        if (j.status != AIJobManager.Status.Committed) revert WrongStatus(jobId, j.status);
        uint256 ends = uint256(c.committedAt) + challengePeriod;
        if (block.timestamp < ends) revert ChallengePeriodActive(ends);
        seal(jobId);
        uint256 payout = uint256(c.steps) * j.pricePerStep;
        address payee = nodes.operatorOf(j.nodeId);
        manager.setStatus(jobId, AIJobManager.Status.Finalized);
        nodes.adjustReputation(j.nodeId, 1);
        market.settle(jobId, payee, payout);
        emit Finalized(jobId, j.nodeId, payee, payout, c.steps);
    }

    // ------------------------------------------------------------ views

    /// @notice A job's commitment (zero root if none).
    function commitmentOf(bytes32 jobId) external view returns (Commitment memory) {
        return _commitments[jobId];
    }

    /// @notice A challenge (zero challenger if none).
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        Dispute storage d = _disputes[challengeId];
        return Challenge(d.jobId, d.challenger, d.bond, d.step, d.challengeBlock, d.drawnAt, d.verdict, d.resolved);
    }

    /// @notice The jurors drawn for a challenge, in draw order (empty before
    /// the draw; kept after resolution).
    function juryOf(uint256 challengeId) external view returns (address[] memory) {
        return _juries[challengeId];
    }

    /// @notice A challenge's voting deadlines (zeros before the draw).
    function deadlinesOf(uint256 challengeId) external view returns (uint256 commitDeadline, uint256 revealDeadline) {
        uint256 drawn = _disputes[challengeId].drawnAt;
        if (drawn == 0) return (0, 0);
        return (drawn + votePeriod, drawn + 2 * uint256(votePeriod));
    }

    /// @notice A juror's ballot on a challenge: drawn, its commitment, and its
    /// revealed vote (0 until revealed).
    function ballotOf(uint256 challengeId, address juror)
        external
        view
        returns (bool drawn, bytes32 commitment, uint8 vote)
    {
        Ballot storage b = _ballots[challengeId][juror];
        return (b.drawn, b.commitment, b.vote);
    }

    /// @notice The commitment `commitVote` expects:
    /// keccak256(abi.encode(challengeId, juror, vote, salt)).
    function voteCommitment(uint256 challengeId, address juror, uint8 vote, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(challengeId, juror, vote, salt));
    }

    // ---------------------------------------------------------- helpers

    function _committed(bytes32 jobId) private view returns (Commitment storage c) {
        c = _commitments[jobId];
        if (c.jobRoot == bytes32(0)) revert NotCommitted(jobId);
    }

    /// @dev An unresolved, existing challenge.
    function _open(uint256 challengeId) private view returns (Dispute storage d) {
        d = _disputes[challengeId];
        if (d.challenger == address(0)) revert UnknownChallenge(challengeId);
        if (d.resolved) revert AlreadyResolved(challengeId);
    }

    function _freshSeed(Commitment storage c, bytes32 jobId) private view returns (bytes32) {
        uint256 ready = uint256(c.commitBlock) + 2;
        if (block.number < ready) revert SeedNotReady(ready);
        return keccak256(abi.encode(_recentHash(uint256(c.commitBlock) + 1), jobId));
    }

    /// @dev blockhash(b) for `b < block.number`; when `b` is older than the
    /// 256 hashes the EVM keeps, the hash of the previous block instead.
    function _recentHash(uint256 b) private view returns (bytes32) {
        return block.number - b > 256 ? blockhash(block.number - 1) : blockhash(b);
    }

    /// @dev Keeps the pool equal to the joined jurors staked at least `jurorStake`.
    function _syncPool(Juror storage jr, address a) private {
        bool drawable = jr.joined && jr.stake >= jurorStake;
        if (drawable && jr.slot == 0) {
            _pool.push(a);
            jr.slot = uint32(_pool.length);
        } else if (!drawable && jr.slot != 0) {
            _removeFromPool(jr);
        }
    }

    /// @dev Swap-and-pop removal from `_pool`.
    function _removeFromPool(Juror storage jr) private {
        uint256 i = jr.slot - 1;
        uint256 last = _pool.length - 1;
        if (i != last) {
            address moved = _pool[last];
            _pool[i] = moved;
            _jurors[moved].slot = uint32(i + 1);
        }
        _pool.pop();
        jr.slot = 0;
    }
}
